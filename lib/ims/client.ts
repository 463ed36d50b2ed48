/**
 * The IMS calls we make ourselves (everything except the browser redirect):
 * token refresh, code exchange, revocation and userinfo. Turns every failure
 * into an ImsError that says whether retrying could help, and never lets a
 * token, code or secret into an error message.
 */
import { imsRequestChannel, traced } from '../diagnostics/channels.js'
import type { Dispatcher } from 'undici'
import { ImsError } from '../errors.js'
import { formPost, get, headerValue } from '../http/request.js'
import type { HttpResponse } from '../http/request.js'
import { FINAL, isTransientStatus, parseRetryAfter, retry, transientFailureKind } from '../http/retry.js'
import type { RetryPolicy } from '../http/retry.js'

export interface ImsClientOptions {
  tokenEndpoint: string
  revocationEndpoint?: string | undefined
  userinfoEndpoint?: string | undefined
  clientId: string
  clientSecret: string
  /** Per attempt. Default 10000. */
  timeoutMs?: number | undefined
  /** Extra attempts after a transient failure of a refresh. Default 3 (as Adobe's own library). */
  retries?: number | undefined
  /** First backoff step; doubles on each retry. Default 500. */
  retryBaseDelayMs?: number | undefined
  /** Cap for one wait, backoff and Retry-After alike. Default 8000. */
  maxRetryDelayMs?: number | undefined
  dispatcher?: Dispatcher | undefined
  /**
   * For the calls a sign-in makes (code exchange, userinfo): a pool of its own, so that sign-ins,
   * which anyone can start, can never take the connections refreshes need. Default: dispatcher.
   */
  signInDispatcher?: Dispatcher | undefined
  /** Injectable for tests, to record waits instead of making them. */
  sleep?: ((ms: number) => Promise<void>) | undefined
}

export const DEFAULT_TIMEOUT_MS = 10_000
export const DEFAULT_RETRIES = 3
export const DEFAULT_RETRY_BASE_DELAY_MS = 500
export const DEFAULT_MAX_RETRY_DELAY_MS = 8_000
/** Revoke and userinfo run while a user waits: one quick second chance at most. */
const MAX_INTERACTIVE_RETRIES = 1
/** Error texts from the server are echoed into messages: keep them short. */
const MAX_ECHOED_CHARS = 200

type Json = Record<string, unknown>

export class ImsClient {
  readonly #opts: ImsClientOptions
  readonly #timeoutMs: number
  readonly #retry: RetryPolicy

  constructor (opts: ImsClientOptions) {
    this.#opts = opts
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#retry = {
      retries: opts.retries ?? DEFAULT_RETRIES,
      baseDelayMs: opts.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS,
      maxDelayMs: opts.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
      sleep: opts.sleep
    }
  }

  /**
   * grant_type=refresh_token; resolves the raw JSON body for parseTokenResponse.
   * Transient failures are retried. When a retry follows a failure after which
   * IMS may have acted (timeout, reset) and ends in an OAuth error, that error's
   * `cause` is the earlier transient one: with rotating refresh tokens the
   * first attempt may have consumed the grant, so invalid_grant is ambiguous.
   */
  async refresh (refreshToken: string, extra?: { scope?: string | undefined }): Promise<Json> {
    return await traced(imsRequestChannel, { endpoint: 'token', grantType: 'refresh_token' }, async () => {
      const res = await this.#withRetries(this.#retry.retries, [refreshToken], async () =>
        await formPost(this.#opts.tokenEndpoint, {
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
          scope: extra?.scope,
          ...this.#clientAuth()
        }, this.#callOptions()))
      return jsonBody(res)
    })
  }

  /** grant_type=authorization_code. Never retried: a code is single-use, and a retry could only get invalid_grant. */
  async exchangeCode (code: string, redirectUri: string, codeVerifier: string | undefined): Promise<Json> {
    return await traced(imsRequestChannel, { endpoint: 'token', grantType: 'authorization_code' }, async () => {
      const res = await this.#withRetries(0, [code, codeVerifier ?? ''], async () =>
        await formPost(this.#opts.tokenEndpoint, {
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          code_verifier: codeVerifier,
          ...this.#clientAuth()
        }, this.#callOptions(undefined, this.#opts.signInDispatcher)))
      return jsonBody(res)
    })
  }

  /** IMS answers 200 with an empty body; revoking a refresh token also kills its access tokens. */
  async revoke (token: string, hint?: 'refresh_token' | 'access_token'): Promise<void> {
    const url = this.#endpoint(this.#opts.revocationEndpoint, 'revocationEndpoint')
    await traced(imsRequestChannel, { endpoint: 'revoke' }, async () =>
      await this.#withRetries(Math.min(this.#retry.retries, MAX_INTERACTIVE_RETRIES), [token], async () =>
        await formPost(url, { token, token_type_hint: hint, ...this.#clientAuth() }, this.#callOptions())))
  }

  async userinfo (accessToken: string): Promise<Json> {
    const url = this.#endpoint(this.#opts.userinfoEndpoint, 'userinfoEndpoint')
    return await traced(imsRequestChannel, { endpoint: 'userinfo' }, async () => {
      const res = await this.#withRetries(Math.min(this.#retry.retries, MAX_INTERACTIVE_RETRIES), [accessToken], async () =>
        await get(url, this.#callOptions({ authorization: `Bearer ${accessToken}` }, this.#opts.signInDispatcher)))
      return jsonBody(res)
    })
  }

  /** In the body, not Basic: IMS accepts both, and the body avoids Basic's form-encoding ambiguity. */
  #clientAuth (): Record<string, string> {
    return { client_id: this.#opts.clientId, client_secret: this.#opts.clientSecret }
  }

  #callOptions (headers?: Record<string, string>, dispatcher?: Dispatcher): { timeoutMs: number, dispatcher: Dispatcher | undefined, headers: Record<string, string> } {
    return {
      timeoutMs: this.#timeoutMs,
      dispatcher: dispatcher ?? this.#opts.dispatcher,
      headers: { accept: 'application/json', ...headers }
    }
  }

  #endpoint (url: string | undefined, name: string): string {
    if (url === undefined) {
      throw new ImsError({ error: 'not_supported', description: `no ${name} configured`, transient: false })
    }
    return url
  }

  /**
   * Runs one call, plus up to `retries` more after transient failures;
   * resolves only a 2xx. `secrets` are what this call sent that must never be
   * echoed back into an error.
   */
  async #withRetries (retries: number, secrets: string[], send: () => Promise<HttpResponse>): Promise<HttpResponse> {
    const allSecrets = [...secrets, this.#opts.clientSecret]
    return await retry({ ...this.#retry, retries }, async (previous) => {
      const res = await send().catch((err: unknown) => { throw transportFailure(err) })
      if (res.status >= 200 && res.status < 300) return res
      throw httpFailure(res, allSecrets, previous instanceof ImsError ? previous : undefined)
    }, (failure) => failure instanceof ImsError ? failure : FINAL)
  }
}

/** A 2xx that is not a JSON object will not improve on retry. */
function jsonBody (res: HttpResponse): Json {
  const body = parseJsonObject(res.text)
  if (body === undefined) {
    throw new ImsError({ error: 'invalid_response', description: 'the body is not a JSON object', status: res.status, debugId: debugId(res), transient: false })
  }
  return body
}

function parseJsonObject (text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Json : undefined
  } catch {
    return undefined
  }
}

function httpFailure (res: HttpResponse, secrets: string[], previous: ImsError | undefined): ImsError {
  const body = parseJsonObject(res.text)
  const oauthError = typeof body?.error === 'string' && body.error !== '' ? scrub(body.error, secrets) : undefined
  const description = typeof body?.error_description === 'string' ? scrub(body.error_description, secrets) : undefined
  // 408 is "not now" too, for IMS; the Lightroom client must not retry it (Adobe's rules for partners).
  const transient = isTransientStatus(res.status) || res.status === 408
  return new ImsError({
    error: oauthError ?? 'http',
    description,
    status: res.status,
    debugId: debugId(res),
    transient,
    retryAfterSeconds: parseRetryAfter(headerValue(res, 'retry-after'), Date.now()),
    // An earlier transient failure may have reached IMS and consumed a single-use grant.
    cause: transient ? undefined : previous
  })
}

function transportFailure (err: unknown): ImsError {
  const kind = transientFailureKind(err)
  // The undici error is kept as cause for logs; it never carries the request body.
  return new ImsError({ error: kind ?? 'network', transient: kind !== undefined, cause: err })
}

function debugId (res: HttpResponse): string | undefined {
  return headerValue(res, 'x-debug-id')
}

/** Server text goes into messages and logs: cut it short and blank out anything we sent as a secret. */
function scrub (text: string, secrets: string[]): string {
  let out = text
  for (const secret of secrets) {
    if (secret !== '') out = out.split(secret).join('[redacted]')
  }
  return out.length > MAX_ECHOED_CHARS ? `${out.slice(0, MAX_ECHOED_CHARS)}…` : out
}
