import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload } from 'jose'
import type { Dispatcher } from 'undici'
import { LightroomAuthError } from '../errors.js'
import { getWithRetries } from '../http/request.js'
import type { RetryPolicy } from '../http/retry.js'

export interface IdTokenVerifierOptions {
  jwksUri: string
  /** Every `iss` accepted: the discovery document's issuer, and for IMS also `{issuer}/ims`. */
  issuers: string[]
  clientId: string
  algorithms: string[]
  clockToleranceSeconds: number
  /** Per attempt of the JWKS fetch. */
  timeoutMs: number
  dispatcher: Dispatcher
  now?: () => number
  /** Injectable for tests, to record the JWKS retry's wait instead of making it. */
  sleep?: ((ms: number) => Promise<void>) | undefined
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
// The JWKS is fetched while a user waits on the sign-in callback: one quick second chance at most.
const JWKS_RETRY = { retries: 1, baseDelayMs: 250, maxDelayMs: 1_000 }

export class IdTokenVerifier {
  readonly #options: IdTokenVerifierOptions
  readonly #keys: ReturnType<typeof createRemoteJWKSet>

  constructor (options: IdTokenVerifierOptions) {
    this.#options = options
    const policy: RetryPolicy = { ...JWKS_RETRY, sleep: options.sleep }
    // jose keeps the cache, the refetch on an unknown kid and the single in-flight fetch; the fetch
    // itself goes through lib/http (our dispatcher, per-attempt timeouts, retries). jose's own
    // timeout bounds the whole of it, retries and the wait between them included.
    this.#keys = createRemoteJWKSet(new URL(options.jwksUri), {
      cooldownDuration: JWKS_REFETCH_FLOOR_MS,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      timeoutDuration: Math.ceil((policy.retries + 1) * options.timeoutMs + policy.maxDelayMs),
      [customFetch]: async (url, init) => {
        const res = await getWithRetries(url, {
          timeoutMs: options.timeoutMs,
          dispatcher: options.dispatcher,
          headers: Object.fromEntries(init.headers),
          signal: init.signal
        }, policy)
        // Thrown here rather than left to jose, whose message would not say which status it was.
        if (res.status !== 200) throw new Error(`JWKS answered HTTP ${res.status}`)
        return new Response(res.text, { status: 200 })
      }
    })
  }

  /** `nonce`: the one sent with this sign-in's authorize request; the token must carry it. */
  async verify (idToken: string, expected: { nonce?: string | undefined } = {}): Promise<VerifiedIdentity> {
    try {
      const payload = await this.#check(idToken)
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('id_token has no sub')
      this.#checkHygiene(payload, expected.nonce)
      return { sub: payload.sub, claims: payload }
    } catch (error) {
      const reason = (error as { code?: string }).code ?? (error as Error).message
      throw new LightroomAuthError('LR_INVALID_ID_TOKEN', 502, `The identity token from the provider failed verification (${reason})`, { cause: error })
    }
  }

  /** The OpenID checks jose leaves to us: azp with several audiences, the nonce, an iat from the future. */
  #checkHygiene (payload: JWTPayload, nonce: string | undefined): void {
    const { clientId, clockToleranceSeconds } = this.#options
    if (payload.azp !== undefined && payload.azp !== clientId) throw new Error('id_token azp is another client')
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp === undefined) throw new Error('id_token has several audiences and no azp')
    if (nonce !== undefined && payload.nonce !== nonce) throw new Error('id_token nonce does not match this sign-in')
    const nowSeconds = (this.#options.now ?? Date.now)() / 1000
    if (typeof payload.iat !== 'number' || payload.iat > nowSeconds + clockToleranceSeconds) throw new Error('id_token iat is missing or in the future')
  }

  async #check (idToken: string): Promise<JWTPayload> {
    const now = this.#options.now
    // Signature by kid against the JWKS only: IMS's header also carries x5u (a bare file name),
    // which jose neither fetches nor trusts, and neither do we.
    const { payload } = await jwtVerify(idToken, this.#keys, {
      issuer: this.#options.issuers,
      audience: this.#options.clientId,
      algorithms: this.#options.algorithms,
      clockTolerance: this.#options.clockToleranceSeconds,
      requiredClaims: ['exp', 'sub', 'iat'],
      ...(now === undefined ? {} : { currentDate: new Date(now()) })
    })
    return payload
  }
}
