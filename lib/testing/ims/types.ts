/**
 * Public types of the mock IMS. Kept apart from the server so that the
 * package's `testing` entry point can re-export them without pulling code.
 */

export interface MockImsUser {
  /** IMS user id, e.g. 'A1B2C3D4E5F6A7B8C9D0E1F2@AdobeID'. */
  sub: string
  name?: string
  email?: string
  givenName?: string
  familyName?: string
}

export interface MockImsClient {
  clientId: string
  clientSecret: string
  /** Undefined: any absolute http(s) URI is accepted (the code is still bound to the one used). */
  redirectUris?: string[]
}

export type MockImsFault =
  /** e.g. 500, or 503 with Retry-After seconds. The default body is a small HTML page, like a gateway's. */
  | { status: number, retryAfter?: number, body?: string, contentType?: string }
  /**
   * Answer normally, but only after this delay. By default the request is still processed when the
   * client hung up meanwhile, as a slow IMS would (a refresh the client gave up on still rotates the
   * refresh token); `dropIfClientGone` plays a request lost before IMS processed it.
   */
  | { delayMs: number, dropIfClientGone?: boolean }
  /** Destroy the socket without answering. */
  | { reset: true }
  /**
   * That OAuth error as JSON (400 by default, 401 for invalid_client). On `authorize` it goes back on
   * the redirect instead, as real IMS does (e.g. access_denied, login_required), when the client and
   * redirect_uri are valid.
   */
  | { oauthError: string, status?: number, description?: string }

export type MockImsEndpoint = 'discovery' | 'authorize' | 'token' | 'userinfo' | 'revoke' | 'keys' | 'logout'

/** Where a fault can be queued: an endpoint, or the token endpoint for one grant type only. */
export type MockImsFaultTarget = MockImsEndpoint | 'token:authorization_code' | 'token:refresh_token'

export interface MockImsOptions {
  /** Default '127.0.0.1'. */
  host?: string
  /** Default 0: a free port. */
  port?: number
  /** Default [{ clientId: 'test-client', clientSecret: 'test-secret' }]. */
  clients?: MockImsClient[]
  /** Default: one user, Ada Lovelace. The first one is signed in unless `signInAs` says otherwise. */
  users?: MockImsUser[]
  /** 'generic' = a standard (Keycloak-like) OpenID provider with other paths and an `/realms/test` issuer. */
  flavor?: 'ims' | 'generic'
  /** Default false: authorize redirects straight back. True: an HTML page with Allow / Deny forms. */
  consent?: boolean
  /** Default 86399 (24 h). */
  accessTokenLifetimeSeconds?: number
  /** Default 14 days. */
  refreshTokenLifetimeSeconds?: number
  /**
   * Default 'sliding': each refresh token issued by a refresh lives a full lifetime. 'absolute': it
   * inherits the expiry of the grant's first refresh token (Lightroom keys without renewal set-up).
   */
  refreshTokenExpiry?: 'sliding' | 'absolute'
  /** Default 300. */
  codeLifetimeSeconds?: number
  /** Default true: a used refresh token is rejected afterwards with invalid_grant. */
  rotateRefreshTokens?: boolean
  /** Default 'seconds' (token v3); 'milliseconds' plays the legacy v1 endpoint. */
  expiresInUnit?: 'seconds' | 'milliseconds'
  /** Refresh responses carry no refresh_token (the old one stays valid). */
  omitRefreshTokenOnRefresh?: boolean
  /** Default true (IMS sends no id_token on refresh). */
  omitIdTokenOnRefresh?: boolean
  /** Default: the Lightroom partner set plus offline_access, email and profile. Unknown scope: invalid_scope. */
  knownScopes?: string[]
  /** Default false (IMS: mandatory only for public clients). */
  requirePkce?: boolean
  /**
   * Default false: a replayed code is refused with invalid_grant. True: the replay also revokes the
   * tokens issued from the first use (what RFC 6749 §4.1.2 recommends; real IMS is undocumented).
   */
  revokeOnCodeReplay?: boolean
  /**
   * The id_token's `iss`: Adobe documents both for IMS. Default 'host', the discovery
   * document's issuer (the bare host); 'host/ims' appends `/ims`.
   */
  idTokenIssuer?: 'host' | 'host/ims'
  /**
   * What revoking a refresh token ends (real IMS is undocumented). Default 'grant': that grant only.
   * 'user-client': every grant of that user for that client.
   */
  revocationScope?: 'grant' | 'user-client'
  /** The error an unknown or bogus code gets at the token endpoint. Default 'invalid_grant'; IMS has been seen to answer 'access_denied'. */
  unknownCodeError?: 'invalid_grant' | 'access_denied'
  /** Clock in epoch ms, default Date.now: lets tests move time (token and code expiry all use it). */
  now?: () => number
}

export interface MockImsIntrospection {
  active: boolean
  sub?: string
  clientId?: string
  /** Space-separated, as in RFC 7662. */
  scope?: string
  /** Epoch ms. */
  expiresAt?: number
}

export interface MockIms {
  /** 'http://127.0.0.1:PORT' */
  readonly origin: string
  /** ims flavor: the bare origin (as real IMS); generic: origin + '/realms/test'. */
  readonly issuer: string
  readonly discoveryUrl: string
  readonly clients: MockImsClient[]
  readonly users: MockImsUser[]
  /**
   * Calls per endpoint and per token grant type: 'token', 'token:authorization_code',
   * 'token:refresh_token', 'authorize', 'revoke', ...; error answers
   * (4xx/5xx from the endpoint's own logic, not injected faults) also count under 'token:error',
   * 'token:refresh_token:error' and so on. Every request that reached an endpoint counts,
   * failed and faulted ones included.
   */
  count (key: string): number
  resetCounts (): void
  /**
   * The next `times` (default 1) requests to `endpoint` get this fault. Faults queue in order.
   * 'token:authorization_code' / 'token:refresh_token' fault only that grant type (and go first).
   */
  fail (endpoint: MockImsFaultTarget, fault: MockImsFault, times?: number): void
  clearFaults (): void
  /** Which user the next authorizations sign in. `login_hint` (sub or email) also selects one. */
  signInAs (sub: string): void
  /** The user revoked consent in their Adobe account: all their grants stop working. */
  revokeConsent (sub: string): void
  /** Every secret value issued so far (codes, access, refresh and id tokens), to scan logs for leaks. */
  issuedSecrets (): string[]
  /** Whether an access token is one this mock issued, unexpired and not revoked. */
  introspect (accessToken: string): MockImsIntrospection
  /** Raw refresh tokens currently valid for a user. */
  activeRefreshTokens (sub: string): string[]
  close (): Promise<void>
}
