/**
 * One error family: every error this package throws is a LightroomError with a stable `code` (one
 * per class, or per failure for LightroomAuthError) and the HTTP status it should answer with.
 * Fastify's default error handler answers `{ statusCode, code, error, message }` for these, so
 * messages must never carry a token, an authorization code or a secret.
 */

/** Every code a LightroomError can carry; compare against these rather than string literals. */
export const ErrorCodes = Object.freeze({
  LOGIN_REQUIRED: 'LR_LOGIN_REQUIRED',
  IMS_UNAVAILABLE: 'LR_IMS_UNAVAILABLE',
  IMS_ERROR: 'LR_IMS_ERROR',
  IMS_REQUEST_FAILED: 'LR_IMS_REQUEST_FAILED',
  STORE_UNAVAILABLE: 'LR_STORE_UNAVAILABLE',
  STORE_CORRUPT: 'LR_STORE_CORRUPT',
  ACCESS_DENIED: 'LR_ACCESS_DENIED',
  /** Sign-in with prompt=none: the user is not signed in at Adobe. */
  IMS_LOGIN_REQUIRED: 'LR_IMS_LOGIN_REQUIRED',
  /** Sign-in with prompt=none: the user has not consented to this app yet. */
  CONSENT_REQUIRED: 'LR_CONSENT_REQUIRED',
  /** Sign-in with prompt=none: Adobe needs the user to interact (a page to show). */
  INTERACTION_REQUIRED: 'LR_INTERACTION_REQUIRED',
  /** Adobe refused the requested scopes (check the `scopes` option). */
  INVALID_SCOPE: 'LR_INVALID_SCOPE',
  BAD_STATE: 'LR_BAD_STATE',
  BAD_ORIGIN: 'LR_BAD_ORIGIN',
  INVALID_ID_TOKEN: 'LR_INVALID_ID_TOKEN',
  INVALID_OPTION: 'LR_INVALID_OPTION',
  API_ERROR: 'LR_API_ERROR',
  /** Lightroom refused because of the account's state (`4301`, `4999`): not entitled, expired, upgrade needed. */
  NOT_ENTITLED: 'LR_NOT_ENTITLED',
  /** An asset or id that Lightroom already has (412 on If-None-Match, 403 `1002`). */
  ALREADY_EXISTS: 'LR_ALREADY_EXISTS',
  /** A Lightroom call refused before it was made: a bad id, rendition type, date, limit or upload body. */
  INVALID_INPUT: 'LR_INVALID_INPUT',
  /** The Redis backend could not complete a call (not connected, timed out, refused). */
  REDIS_UNAVAILABLE: 'LR_REDIS_UNAVAILABLE',
  /** The PostgreSQL backend could not complete a call (down, hung, pool exhausted, missing table). */
  POSTGRES_UNAVAILABLE: 'LR_POSTGRES_UNAVAILABLE',
  /** renewExpiring / reencryptAll stopped part-way (the store failed): the error carries what was done. */
  BATCH_INCOMPLETE: 'LR_BATCH_INCOMPLETE',
  /** A path under routePrefix that is none of our routes (or a wrong method). */
  NOT_FOUND: 'LR_NOT_FOUND',
  /** A malformed request to one of our routes (Fastify's own 4xx, answered without its text). */
  BAD_REQUEST: 'LR_BAD_REQUEST',
  /** Something unexpected in one of our routes; logged, never echoed. */
  INTERNAL: 'LR_INTERNAL_ERROR'
} as const)

export type LightroomErrorCode = typeof ErrorCodes[keyof typeof ErrorCodes]

/** The codes a LightroomAuthError can carry: what a request, a sign-in or a background job can meet. */
export type LightroomAuthErrorCode = typeof ErrorCodes[
  | 'LOGIN_REQUIRED' | 'IMS_UNAVAILABLE' | 'IMS_ERROR' | 'STORE_UNAVAILABLE' | 'STORE_CORRUPT' | 'ACCESS_DENIED'
  | 'IMS_LOGIN_REQUIRED' | 'CONSENT_REQUIRED' | 'INTERACTION_REQUIRED' | 'INVALID_SCOPE'
  | 'BAD_STATE' | 'BAD_ORIGIN' | 'INVALID_ID_TOKEN' | 'BAD_REQUEST'
]

/** The base of every error this package throws. */
export abstract class LightroomError extends Error {
  abstract readonly code: LightroomErrorCode
  /** The HTTP status an answer caused by this error should carry. */
  abstract readonly statusCode: number
  /**
   * What an answer may say. Our own messages by default; classes whose message quotes upstream
   * text (IMS's error_description, Lightroom's description) or a store key say something generic.
   */
  get publicMessage (): string {
    return this.message
  }
}

/** What a request, a sign-in step or a background job could not get: the user must act, or try later. */
export class LightroomAuthError extends LightroomError {
  override readonly name = 'LightroomAuthError'
  readonly statusCode: number
  readonly code: LightroomAuthErrorCode

  constructor (code: LightroomAuthErrorCode, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.statusCode = statusCode
    // A 4xx is an expected answer (signed out, refused sign-in), not a bug: Fastify logs it at info,
    // and a stack trace there is noise in every signed-out request's log line.
    if (statusCode < 500) this.stack = `${this.name}: ${message}`
  }
}

export function loginRequired (message = 'Sign in with Adobe to continue', cause?: unknown): LightroomAuthError {
  return new LightroomAuthError(ErrorCodes.LOGIN_REQUIRED, 401, message, { cause })
}

export function imsUnavailable (message = 'Adobe IMS cannot be reached and the access token has expired', cause?: unknown): LightroomAuthError {
  return new LightroomAuthError(ErrorCodes.IMS_UNAVAILABLE, 503, message, { cause })
}

export function storeUnavailable (message = 'The token store cannot be reached', cause?: unknown): LightroomAuthError {
  return new LightroomAuthError(ErrorCodes.STORE_UNAVAILABLE, 503, message, { cause })
}

export const REGISTRATION = '(registration)'

/** Thrown at registration for a wrong option; `option` names it. */
export class LightroomConfigError extends LightroomError {
  override readonly name = 'LightroomConfigError'
  readonly code = ErrorCodes.INVALID_OPTION
  readonly statusCode = 500
  readonly option: string

  /** `option` names the wrong option; `(registration)` marks a mistake in how the plugin is registered. */
  constructor (option: string, message: string, options?: { cause?: unknown }) {
    super(option === REGISTRATION ? `fastify-lightroom-ims: ${message}` : `fastify-lightroom-ims: option "${option}" ${message}`, options)
    this.option = option
  }
}

/**
 * A store record that cannot be decrypted or parsed: truncated, tampered,
 * moved to another key, or written with a key id we no longer hold. The
 * message says which, never what the record held.
 */
export class StoreRecordError extends LightroomError {
  override readonly name = 'StoreRecordError'
  readonly code = ErrorCodes.STORE_CORRUPT
  readonly statusCode = 500
  readonly key: string
  readonly reason: 'malformed' | 'unknown-key' | 'auth-failed' | 'bad-json'
  override get publicMessage (): string { return 'A stored record cannot be read' }

  /**
   * The raw envelope that could not be read, so the record is removed only while it is still that
   * one (compare-and-delete). Not enumerable: a logged error never carries it.
   */
  declare readonly revision: string | undefined

  constructor (key: string, reason: StoreRecordError['reason']) {
    super(`Store record "${key}" cannot be read: ${reason}`)
    this.key = key
    this.reason = reason
    Object.defineProperty(this, 'revision', { value: undefined, enumerable: false, writable: true })
  }

  /** The same error, naming the envelope it came from (see `revision`). */
  withRevision (revision: string): this {
    Object.defineProperty(this, 'revision', { value: revision, enumerable: false, writable: false })
    return this
  }
}

/** An error answer from the IMS token, revoke or userinfo endpoint, or a failure to reach it. */
export class ImsError extends LightroomError {
  override readonly name = 'ImsError'
  readonly code = ErrorCodes.IMS_REQUEST_FAILED
  /** A failed call to IMS is a bad gateway for whoever waited on it. */
  readonly statusCode = 502
  /** OAuth error code (`invalid_grant`, ...) when IMS sent one; `network` / `timeout` / `http` otherwise. */
  readonly error: string
  readonly status: number | undefined
  /** IMS's X-Debug-Id header, worth logging for Adobe support. */
  readonly debugId: string | undefined
  /** Transient failures (5xx, 429, timeouts, resets) are retried and never delete anything. */
  readonly transient: boolean
  /** Seconds from a Retry-After header, when present. */
  readonly retryAfterSeconds: number | undefined
  override get publicMessage (): string { return 'Adobe IMS could not complete the request' }

  constructor (init: { error: string, description?: string | undefined, status?: number | undefined, debugId?: string | undefined, transient: boolean, retryAfterSeconds?: number | undefined, cause?: unknown }) {
    super(`IMS ${init.status ?? 'request'} failed: ${init.error}${init.description ? ` (${init.description})` : ''}`, { cause: init.cause })
    this.error = init.error
    this.status = init.status
    this.debugId = init.debugId
    this.transient = init.transient
    this.retryAfterSeconds = init.retryAfterSeconds
  }
}

/**
 * A batch job (`renewExpiring`, `reencryptAll`) stopped part-way because the store failed: `report`
 * holds the counts of what it did before (a rerun picks up where it stopped), `cause` says why.
 * The status is the cause's (503 for a store that is down).
 */
export class LightroomBatchError<Report extends object = object> extends LightroomError {
  override readonly name = 'LightroomBatchError'
  readonly code = ErrorCodes.BATCH_INCOMPLETE
  readonly statusCode: number
  readonly job: string
  readonly report: Report
  override get publicMessage (): string { return 'A batch job stopped before it finished' }

  constructor (job: string, report: Report, cause: unknown) {
    // The cause's code or class name only: its message may quote a store key or an upstream text.
    const reason = cause instanceof LightroomError ? cause.code : cause instanceof Error ? cause.name : 'a non-error value thrown'
    super(`${job} stopped before it finished (${reason}); its report holds what it did`, { cause })
    this.job = job
    this.report = report
    this.statusCode = cause instanceof LightroomError && cause.statusCode >= 500 ? cause.statusCode : 500
  }
}

/** Our own codes for a LightroomApiError's `lightroomCode`, for failures that carry no Lightroom code. */
export type LightroomApiClientCode =
  | 'LR_API_HTTP_ERROR'
  | 'LR_API_TIMEOUT'
  | 'LR_API_UNREACHABLE'
  | 'LR_API_INVALID_RESPONSE'
  /** A link in a Lightroom answer pointed away from the configured origin: not followed. */
  | 'LR_API_FOREIGN_LINK'
  /** generateRenditions(): the rendition was not ready within its timeout. */
  | 'LR_RENDITION_NOT_READY'

export interface LightroomApiErrorInit {
  statusCode: number
  lightroomCode: string
  description?: string | undefined
  /** Default 'GET'. */
  method?: string | undefined
  path: string
  retryAfterSeconds?: number | undefined
  transient: boolean
  cause?: unknown
}

/** A Lightroom API call that failed: Lightroom's answer, or no usable answer at all. Never carries a token. */
export class LightroomApiError extends LightroomError {
  override readonly name: string = 'LightroomApiError'
  readonly code: LightroomErrorCode = ErrorCodes.API_ERROR
  /** Lightroom's HTTP status; 502 (unreachable, unreadable answer) or 504 (timeout) when it gave none. */
  readonly statusCode: number
  /** Lightroom's `code` or `error_code` ('403003', '1000', ...), else one of LightroomApiClientCode. */
  readonly lightroomCode: string
  readonly description: string | undefined
  /** The API path called, e.g. '/v2/account'. */
  readonly path: string
  /** From a Retry-After header on the last answer. */
  readonly retryAfterSeconds: number | undefined
  /** A later call may succeed (429, 5xx, timeout, reset); retries were already spent on it. */
  readonly transient: boolean
  override get publicMessage (): string { return 'The Lightroom API call failed' }

  constructor (init: LightroomApiErrorInit) {
    const detail = init.description === undefined ? '' : ` (${init.description})`
    super(`Lightroom ${init.method ?? 'GET'} ${init.path} failed: ${init.statusCode} ${init.lightroomCode}${detail}`, { cause: init.cause })
    this.statusCode = init.statusCode
    this.lightroomCode = init.lightroomCode
    this.description = init.description
    this.path = init.path
    this.retryAfterSeconds = init.retryAfterSeconds
    this.transient = init.transient
  }
}

/**
 * Lightroom refused because of the account, not the token: `4301` (account state), `4999` (upgrade
 * required), or an account whose entitlement is not trial or subscriber. Refreshing does not help;
 * the user must subscribe (or renew) first.
 */
export class LightroomNotEntitledError extends LightroomApiError {
  override readonly name = 'LightroomNotEntitledError'
  override readonly code = ErrorCodes.NOT_ENTITLED
}

/** Lightroom already has it: an asset id taken (403 `1002`), or an upload whose sha256 it holds (412). */
export class LightroomAlreadyExistsError extends LightroomApiError {
  override readonly name = 'LightroomAlreadyExistsError'
  override readonly code = ErrorCodes.ALREADY_EXISTS
}

/** A Lightroom call refused before any request: the caller's input is wrong. `field` names it. */
export class LightroomInputError extends LightroomError {
  override readonly name = 'LightroomInputError'
  readonly code = ErrorCodes.INVALID_INPUT
  readonly statusCode = 400
  readonly field: string
  /** uploadAsset(): the id of an asset created before the body turned out wrong (see the README). */
  readonly assetId: string | undefined

  constructor (field: string, message: string, options?: { assetId?: string | undefined, cause?: unknown }) {
    super(`Lightroom: \`${field}\` ${message}`, { cause: options?.cause })
    this.field = field
    this.assetId = options?.assetId
  }
}

/** The JSON body of an error answer: Fastify's usual shape, from our own message only. */
export interface ErrorBody {
  statusCode: number
  code: string
  error: string
  message: string
}

/**
 * Builds every JSON error body this package sends; `extra` adds fields such as `loginUrl`. Only a
 * LightroomError's publicMessage (or the message of a plain description of our own) is shown.
 */
export function errorBody<T extends object = object> (error: LightroomError | { statusCode: number, code: LightroomErrorCode, message: string }, extra?: T): ErrorBody & T {
  const message = error instanceof LightroomError ? error.publicMessage : error.message
  return { statusCode: error.statusCode, code: error.code, error: httpReason(error.statusCode), message, ...extra } as ErrorBody & T
}

function httpReason (status: number): string {
  switch (status) {
    case 400: return 'Bad Request'
    case 401: return 'Unauthorized'
    case 403: return 'Forbidden'
    case 404: return 'Not Found'
    case 500: return 'Internal Server Error'
    case 502: return 'Bad Gateway'
    case 503: return 'Service Unavailable'
    default: return status < 500 ? 'Bad Request' : 'Error'
  }
}
