/**
 * Typed errors with stable codes. Fastify's default error handler answers
 * `{ statusCode, code, error, message }` for these, so messages must never
 * carry a token, a code or a secret.
 */

export type LightroomErrorCode =
  | 'LR_LOGIN_REQUIRED'
  | 'LR_IMS_UNAVAILABLE'
  | 'LR_IMS_ERROR'
  | 'LR_STORE_UNAVAILABLE'
  | 'LR_STORE_CORRUPT'
  | 'LR_ACCESS_DENIED'
  | 'LR_BAD_STATE'
  | 'LR_BAD_ORIGIN'
  | 'LR_INVALID_ID_TOKEN'

export class LightroomAuthError extends Error {
  readonly statusCode: number
  readonly code: LightroomErrorCode

  constructor (code: LightroomErrorCode, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LightroomAuthError'
    this.code = code
    this.statusCode = statusCode
  }
}

export function loginRequired (message = 'Sign in with Adobe to continue', cause?: unknown): LightroomAuthError {
  return new LightroomAuthError('LR_LOGIN_REQUIRED', 401, message, { cause })
}

export function imsUnavailable (message = 'Adobe IMS cannot be reached and the access token has expired', cause?: unknown): LightroomAuthError {
  return new LightroomAuthError('LR_IMS_UNAVAILABLE', 503, message, { cause })
}

export function storeUnavailable (message = 'The token store cannot be reached', cause?: unknown): LightroomAuthError {
  return new LightroomAuthError('LR_STORE_UNAVAILABLE', 503, message, { cause })
}

/** Thrown at registration for a wrong option; `option` names it. */
export class LightroomConfigError extends Error {
  readonly code = 'LR_INVALID_OPTION'
  readonly option: string

  constructor (option: string, message: string, options?: { cause?: unknown }) {
    super(`fastify-lightroom-ims: option "${option}" ${message}`, options)
    this.name = 'LightroomConfigError'
    this.option = option
  }
}

/**
 * A store record that cannot be decrypted or parsed: truncated, tampered,
 * moved to another key, or written with a key id we no longer hold. The
 * message says which, never what the record held.
 */
export class StoreRecordError extends Error {
  readonly code = 'LR_STORE_CORRUPT'
  readonly key: string
  readonly reason: 'malformed' | 'unknown-key' | 'auth-failed' | 'bad-json'

  constructor (key: string, reason: StoreRecordError['reason']) {
    super(`Store record "${key}" cannot be read: ${reason}`)
    this.name = 'StoreRecordError'
    this.key = key
    this.reason = reason
  }
}

/** An error answer from the IMS token, revoke or userinfo endpoint, or a failure to reach it. */
export class ImsError extends Error {
  /** OAuth error code (`invalid_grant`, ...) when IMS sent one; `network` / `timeout` / `http` otherwise. */
  readonly error: string
  readonly status: number | undefined
  /** IMS's X-Debug-Id header, worth logging for Adobe support. */
  readonly debugId: string | undefined
  /** Transient failures (5xx, 429, timeouts, resets) are retried and never delete anything. */
  readonly transient: boolean
  /** Seconds from a Retry-After header, when present. */
  readonly retryAfterSeconds: number | undefined

  constructor (init: { error: string, description?: string | undefined, status?: number | undefined, debugId?: string | undefined, transient: boolean, retryAfterSeconds?: number | undefined, cause?: unknown }) {
    super(`IMS ${init.status ?? 'request'} failed: ${init.error}${init.description ? ` (${init.description})` : ''}`, { cause: init.cause })
    this.name = 'ImsError'
    this.error = init.error
    this.status = init.status
    this.debugId = init.debugId
    this.transient = init.transient
    this.retryAfterSeconds = init.retryAfterSeconds
  }
}
