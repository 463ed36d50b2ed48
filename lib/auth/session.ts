import { createHash, randomBytes } from 'node:crypto'
import { Signer } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { cookieFromHeader } from '../http/cookie-header.js'
import { StoreRecordError, storeUnavailable } from '../errors.js'
import type { StoredValue, TokenStore } from '../store/types.js'

/** What a session id points at, server side. The browser only ever holds the signed, opaque id. */
export interface SessionRecord {
  userId: string
  createdAt: number
  /** The sign-in this session came from: valid only while the user's token record lists it. */
  signInId: string
}

/** A session about to start: the token record lists its sign-in before the session is stored. */
export interface NewSession {
  id: string
  key: string
  record: SessionRecord
}

export interface SessionManagerOptions {
  store: TokenStore
  secrets: string[]
  /** https: Secure cookie with the `__Host-` prefix (host-only, Path=/, cannot be planted by a sibling subdomain). */
  secure: boolean
  maxAgeMs: number
  now: () => number
}

const VERIFIED_CACHE_SIZE = 10_000

export const SESSION_PREFIX = 'session:'

export function sessionKey (sessionId: string): string {
  // Keyed by a hash: someone who can read the backend still cannot mint a cookie from a key.
  return `${SESSION_PREFIX}${createHash('sha256').update(sessionId).digest('base64url')}`
}

export class SessionManager {
  readonly cookieName: string
  readonly #options: SessionManagerOptions
  readonly #signer: Signer
  readonly #verified = new Map<string, string>()
  readonly #cookieOptions: { path: string, httpOnly: true, sameSite: 'lax', secure: boolean }

  constructor (options: SessionManagerOptions) {
    this.#options = options
    this.#signer = new Signer(options.secrets, 'sha256')
    this.cookieName = options.secure ? '__Host-lr_session' : 'lr_session'
    this.#cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax', secure: options.secure }
  }

  /** The session id from a validly signed cookie, or undefined (absent, forged, or signed with an unknown secret). */
  sessionId (request: FastifyRequest): string | undefined {
    const raw = this.#rawCookie(request)
    if (raw === undefined || raw.length > 512) return undefined
    const unsigned = this.#signer.unsign(raw)
    if (!unsigned.valid || unsigned.value === null || !/^[A-Za-z0-9_-]{43}$/.test(unsigned.value)) return undefined
    return unsigned.value
  }

  /**
   * The store key for a request's session cookie. A cookie value that verified once always verifies
   * (same secrets, same value), so its key is remembered: the HMAC check and the SHA-256 are then
   * skipped for every later request of that browser. Only valid cookies are remembered, and the map
   * is bounded, so forged cookies cannot grow it.
   */
  #rawCookie (request: FastifyRequest): string | undefined {
    // Parsed already when the host app (or our auth routes) run @fastify/cookie's hook.
    const parsed = request.cookies as Record<string, string | undefined> | null
    if (parsed !== null && parsed !== undefined) return parsed[this.cookieName]
    return cookieFromHeader(request.headers.cookie, this.cookieName)
  }

  #keyFor (request: FastifyRequest): string | undefined {
    const raw = this.#rawCookie(request)
    if (raw === undefined) return undefined
    const known = this.#verified.get(raw)
    if (known !== undefined) return known
    const id = this.sessionId(request)
    if (id === undefined) return undefined
    const key = sessionKey(id)
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) this.#verified.delete(this.#verified.keys().next().value as string)
    this.#verified.set(raw, key)
    return key
  }

  /** The session when it can be known without waiting (see TokenStore.peek); undefined means "ask read()". */
  peek (request: FastifyRequest): SessionRecord | undefined {
    const key = this.#keyFor(request)
    if (key === undefined) return undefined
    const record = this.#options.store.peek<SessionRecord>(key)?.value
    return this.#current(record)
  }

  /** A well-formed record still within the session lifetime, or undefined. */
  #current (record: SessionRecord | undefined): SessionRecord | undefined {
    if (record === undefined || typeof record.userId !== 'string' || typeof record.createdAt !== 'number' || typeof record.signInId !== 'string') return undefined
    if (this.#options.now() - record.createdAt > this.#options.maxAgeMs) return undefined
    return record
  }

  /** Reads the request's session from the store (CurrentUser shares one read per request). */
  async read (request: FastifyRequest): Promise<SessionRecord | undefined> {
    const key = this.#keyFor(request)
    if (key === undefined) return undefined
    let stored: StoredValue<SessionRecord> | undefined
    try {
      stored = await this.#options.store.get<SessionRecord>(key)
    } catch (error) {
      // A record we cannot decrypt is no session (sign in again); an unreachable store is a 503,
      // never a 500 and never a sign-out: the session is still there once the store is back.
      // Logged (reason only, never the record) so operators see tampering or a retired key.
      if (error instanceof StoreRecordError) {
        request.log.warn({ reason: error.reason }, 'lightroom-ims: stored session record is unreadable; the browser must sign in again')
        return undefined
      }
      throw storeUnavailable(undefined, error)
    }
    const record = stored?.value
    return this.#current(record)
  }

  /** A new random session id and sign-in id for a user; nothing is stored until start(). */
  prepare (userId: string): NewSession {
    const id = randomBytes(32).toString('base64url')
    return { id, key: sessionKey(id), record: { userId, createdAt: this.#options.now(), signInId: randomBytes(16).toString('base64url') } }
  }

  /**
   * Stores a prepared session and sets its cookie. Any session id the browser brought is discarded
   * and its record deleted, so an id planted before sign-in is never promoted to a signed-in one (fixation).
   */
  async start (request: FastifyRequest, reply: FastifyReply, session: NewSession): Promise<SessionRecord> {
    const previous = this.sessionId(request)
    try {
      if (previous !== undefined) await this.#options.store.delete(sessionKey(previous))
      await this.#options.store.set(session.key, session.record, this.#options.maxAgeMs)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    reply.setCookie(this.cookieName, this.#signer.sign(session.id), {
      ...this.#cookieOptions,
      maxAge: Math.floor(this.#options.maxAgeMs / 1000)
    })
    return session.record
  }

  async destroy (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const id = this.sessionId(request)
    try {
      if (id !== undefined) await this.#options.store.delete(sessionKey(id))
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    this.clearCookie(reply)
  }

  clearCookie (reply: FastifyReply): void {
    reply.clearCookie(this.cookieName, this.#cookieOptions)
  }
}
