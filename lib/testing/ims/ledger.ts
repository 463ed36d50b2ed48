/**
 * Everything the mock has issued: codes, grants and tokens, with the rules that
 * decide whether one still works. A grant is one user's consent for one client,
 * made when a code is exchanged; every token belongs to exactly one grant, so
 * revoking a grant (consent withdrawn, refresh token revoked) kills them all.
 */
import type { MockImsUser } from './types.js'

export interface CodeRecord {
  code: string
  clientId: string
  /** The redirect URI the browser was sent back to. */
  redirectUri: string
  /** Whether authorize was given redirect_uri explicitly (then the token request must repeat it). */
  redirectUriGiven: boolean
  challenge?: string
  challengeMethod?: 'S256' | 'plain'
  scopes: string[]
  user: MockImsUser
  nonce?: string
  expiresAt: number
  used: boolean
  /** The grant made by the first exchange, so a replay can revoke it. */
  grant?: Grant
}

export interface Grant {
  user: MockImsUser
  clientId: string
  scopes: string[]
  revoked: boolean
  /** Expiry of the grant's first refresh token, for the 'absolute' refresh expiry mode. */
  firstRefreshExpiresAt?: number
}

export interface TokenRecord {
  token: string
  kind: 'access' | 'refresh'
  grant: Grant
  scopes: string[]
  expiresAt: number
  /** Revoked on its own, or rotated away (refresh tokens). */
  revoked: boolean
}

export interface LiveToken {
  record: TokenRecord
  grant: Grant
}

export class Ledger {
  readonly #now: () => number
  readonly #codes = new Map<string, CodeRecord>()
  readonly #grants = new Set<Grant>()
  readonly #tokens = new Map<string, TokenRecord>()
  readonly #secrets: string[] = []

  constructor (now: () => number) {
    this.#now = now
  }

  addCode (record: CodeRecord): void {
    this.#codes.set(record.code, record)
    this.#secrets.push(record.code)
  }

  /** Looks a code up and marks it used: a code is spent by its first use, even a failed one. */
  takeCode (code: string): { record: CodeRecord, wasUsed: boolean } | undefined {
    const record = this.#codes.get(code)
    if (!record) return undefined
    const wasUsed = record.used
    record.used = true
    return { record, wasUsed }
  }

  addGrant (grant: Grant): void {
    this.#grants.add(grant)
  }

  addToken (record: TokenRecord): void {
    this.#tokens.set(record.token, record)
    this.#secrets.push(record.token)
  }

  /** Secrets that are not stored as records (id tokens). */
  addSecret (value: string): void {
    this.#secrets.push(value)
  }

  /** The token with its grant when it exists, is of this kind, has not expired and was not revoked. */
  live (token: string, kind: TokenRecord['kind']): LiveToken | undefined {
    const record = this.#tokens.get(token)
    if (!record || record.kind !== kind || record.revoked) return undefined
    if (this.#now() >= record.expiresAt || record.grant.revoked) return undefined
    return { record, grant: record.grant }
  }

  /**
   * RFC 7009 revocation on behalf of a client: a refresh token takes its whole grant with it
   * (its access tokens included); an access token goes alone. Tokens of other clients are left alone.
   */
  revokeToken (token: string, clientId: string, scope: 'grant' | 'user-client' = 'grant'): void {
    const record = this.#tokens.get(token)
    if (record?.grant.clientId !== clientId) return
    record.revoked = true
    if (record.kind !== 'refresh') return
    record.grant.revoked = true
    if (scope === 'grant') return
    for (const grant of this.#grants) {
      if (grant.user.sub === record.grant.user.sub && grant.clientId === clientId) grant.revoked = true
    }
  }

  /** Consent withdrawn: every grant of the user dies, and codes not yet exchanged with them. */
  revokeUser (sub: string): void {
    for (const grant of this.#grants) {
      if (grant.user.sub === sub) grant.revoked = true
    }
    for (const code of this.#codes.values()) {
      if (code.user.sub === sub) code.used = true
    }
  }

  activeRefreshTokens (sub: string): string[] {
    const tokens: string[] = []
    for (const record of this.#tokens.values()) {
      const live = this.live(record.token, 'refresh')
      if (live?.grant.user.sub === sub) tokens.push(record.token)
    }
    return tokens
  }

  secrets (): string[] {
    return [...this.#secrets]
  }
}
