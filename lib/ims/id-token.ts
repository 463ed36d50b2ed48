import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose'
import { request, type Dispatcher } from 'undici'
import { LightroomAuthError } from '../errors.js'

export interface IdTokenVerifierOptions {
  jwksUri: string
  issuer: string
  clientId: string
  algorithms: string[]
  clockToleranceSeconds: number
  timeoutMs: number
  dispatcher: Dispatcher
  now?: () => number
}

/** The verified identity from an id_token; `sub` is the IMS user id our records are keyed by. */
export interface VerifiedIdentity {
  sub: string
  claims: JWTPayload
}

// A provider rotating its keys publishes the new one before signing with it; refetching on an
// unknown kid picks it up, and the floor keeps forged kids from turning us into a request amplifier.
const JWKS_REFETCH_FLOOR_MS = 30_000
// A key the provider withdrew (compromised, retired) must stop being trusted without a restart.
const JWKS_MAX_AGE_MS = 24 * 3_600_000

export class IdTokenVerifier {
  readonly #options: IdTokenVerifierOptions
  #keys: ReturnType<typeof createLocalJWKSet> | undefined
  #fetchedAt = 0
  #inflight: Promise<void> | undefined

  constructor (options: IdTokenVerifierOptions) {
    this.#options = options
  }

  async #load (): Promise<void> {
    const { statusCode, body } = await request(this.#options.jwksUri, {
      dispatcher: this.#options.dispatcher,
      headersTimeout: this.#options.timeoutMs,
      bodyTimeout: this.#options.timeoutMs,
      signal: AbortSignal.timeout(this.#options.timeoutMs)
    })
    const text = await body.text()
    if (statusCode !== 200) throw new Error(`JWKS answered HTTP ${statusCode}`)
    const jwks = JSON.parse(text) as JSONWebKeySet
    if (!Array.isArray(jwks.keys)) throw new Error('JWKS has no keys array')
    this.#keys = createLocalJWKSet(jwks)
    this.#fetchedAt = Date.now()
  }

  async #refresh (): Promise<void> {
    this.#inflight ??= this.#load().finally(() => { this.#inflight = undefined })
    await this.#inflight
  }

  async verify (idToken: string): Promise<VerifiedIdentity> {
    try {
      if (this.#keys === undefined || Date.now() - this.#fetchedAt > JWKS_MAX_AGE_MS) await this.#refresh()
      let payload: JWTPayload
      try {
        payload = await this.#check(idToken)
      } catch (error) {
        const code = (error as { code?: string }).code
        if (code !== 'ERR_JWKS_NO_MATCHING_KEY' || Date.now() - this.#fetchedAt < JWKS_REFETCH_FLOOR_MS) throw error
        await this.#refresh()
        payload = await this.#check(idToken)
      }
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('id_token has no sub')
      return { sub: payload.sub, claims: payload }
    } catch (error) {
      const reason = (error as { code?: string }).code ?? (error as Error).message
      throw new LightroomAuthError('LR_INVALID_ID_TOKEN', 502, `The identity token from the provider failed verification (${reason})`, { cause: error })
    }
  }

  async #check (idToken: string): Promise<JWTPayload> {
    const now = this.#options.now
    const { payload } = await jwtVerify(idToken, this.#keys!, {
      issuer: this.#options.issuer,
      audience: this.#options.clientId,
      algorithms: this.#options.algorithms,
      clockTolerance: this.#options.clockToleranceSeconds,
      requiredClaims: ['exp', 'sub'],
      ...(now === undefined ? {} : { currentDate: new Date(now()) })
    })
    return payload
  }
}
