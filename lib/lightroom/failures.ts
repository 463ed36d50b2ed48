/**
 * From a failed Lightroom exchange to the error the caller sees: Lightroom's code from either of its
 * two error shapes, the typed subclasses for the account's state and for "already exists", and
 * never a token (Lightroom's text is scrubbed of every token we sent, and cut short).
 */
import { LightroomAlreadyExistsError, LightroomApiError, LightroomNotEntitledError } from '../errors.js'
import type { LightroomApiErrorInit } from '../errors.js'
import { isTransientStatus, parseRetryAfter, transientFailureKind } from '../http/retry.js'
import { isJsonObject, readErrorBody } from './body.js'

/** Server text is echoed into messages: keep it short. */
const MAX_ECHOED_CHARS = 200
/** Account state (not entitled, expired) and "upgrade required". */
const ACCOUNT_STATE_CODES = new Set(['4301', '4999'])
/** Lightroom's "Resource already exists". */
const EXISTS_CODE = '1002'
/** Lightroom's code for an expired or revoked access token on a 403. */
export const EXPIRED_TOKEN_CODE = '4300'

export interface FailedAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  json: unknown
}

export function httpError (answer: FailedAnswer, method: string, path: string, sent: string[]): LightroomApiError {
  const { code, description } = readErrorBody(answer.json)
  const retryAfter = answer.headers['retry-after']
  const init: LightroomApiErrorInit = {
    statusCode: answer.status,
    lightroomCode: code === undefined ? 'LR_API_HTTP_ERROR' : scrub(code, sent),
    description: description === undefined ? undefined : scrub(description, sent),
    method,
    path,
    retryAfterSeconds: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now()),
    transient: isTransientStatus(answer.status)
  }
  if (answer.status === 403 && code !== undefined && ACCOUNT_STATE_CODES.has(code)) return new LightroomNotEntitledError(init)
  if (answer.status === 412 || (answer.status === 403 && code === EXISTS_CODE)) return new LightroomAlreadyExistsError(init)
  return new LightroomApiError(init)
}

export function transportError (error: unknown, method: string, path: string): LightroomApiError {
  const kind = transientFailureKind(error)
  return new LightroomApiError({
    statusCode: kind === 'timeout' ? 504 : 502,
    lightroomCode: kind === 'timeout' ? 'LR_API_TIMEOUT' : 'LR_API_UNREACHABLE',
    method,
    path,
    transient: kind !== undefined,
    // undici's errors never quote request headers, so the bearer token cannot be in here.
    cause: error
  })
}

export function invalidResponse (method: string, path: string, description: string, cause?: unknown): LightroomApiError {
  return new LightroomApiError({ statusCode: 502, lightroomCode: 'LR_API_INVALID_RESPONSE', description, method, path, transient: false, cause })
}

/**
 * 401, or 403 with `4300`: the token is dead, so one forced refresh may fix it. Other 403s are the
 * key, the account or the request; an album add that added nothing answers 403 with per-asset
 * `errors`, which is no token problem either.
 */
export function wantsRefresh (status: number, body: unknown): boolean {
  if (status === 401) return true
  if (status !== 403 || readErrorBody(body).code !== EXPIRED_TOKEN_CODE) return false
  return !(isJsonObject(body) && Array.isArray(body['errors']))
}

/** Lightroom's documented "your catalog id changed": a 404 whose errors name the catalog. */
export function catalogGone (status: number, body: unknown): boolean {
  if (status !== 404 || !isJsonObject(body)) return false
  const errors = body['errors']
  if (!isJsonObject(errors)) return false
  const catalog = errors['catalog']
  return Array.isArray(catalog) && catalog.some((reason) => typeof reason === 'string' && /does not exist/i.test(reason))
}

/** Lightroom text goes into messages and logs: cut it short and blank out any token we sent. */
export function scrub (text: string, secrets: string[]): string {
  let out = text
  for (const secret of secrets) out = out.split(secret).join('[redacted]')
  return out.length > MAX_ECHOED_CHARS ? `${out.slice(0, MAX_ECHOED_CHARS)}…` : out
}
