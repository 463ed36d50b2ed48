import { createHash, randomBytes } from 'node:crypto'
import { Signer } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { cookieFromHeader } from '../http/cookie-header.js'
import { storeUnavailable } from '../errors.js'
import type { StoredRead, TokenStore } from '../store/types.js'
import { readRecord } from './read-record.js'

/** What a session id points at, server side. The browser holds the signed id (and the user it names), never a token. */
export interface SessionRecord {
  userId: string
  createdAt: number
  /** The sign-in this session came from: valid only while the user's token record lists it. */
  signInId: string
}

/** A session about to start: the token record lists its sign-in before the session is stored. */
export interface NewSession {
  /** What the cookie carries, signed: `<sessionId>.<u>`, or `<sessionId>` for a user id too long to carry. */
  cookieValue: string
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

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/
/**
 * The longest user part a cookie carries: base64url of a user id of up to 300 bytes (IMS ids are
 * about 30). id (43) + '.' + this + '.' + signature (43) stays under the 512-character cap of a
 * cookie we even try to verify. A longer id gets a cookie without it (read in two steps).
 */
const MAX_USER_PART = 400
const USER_PART = /^[A-Za-z0-9_-]{1,400}$/

/** What a validly signed session cookie says, once unsigned. */
export interface SessionCookie {
  /** The store key of its session record. */
  key: string
  /**
   * The user the cookie names (signed, so not forgeable), which lets the session and the user's
   * tokens be read in one round trip. Undefined for a cookie from before cookies named the user.
   */
  userId: string | undefined
}

function hashOf (sessionId: string): string {
  // Keyed by a hash: someone who can read the backend still cannot mint a cookie from a key.
  return createHash('sha256').update(sessionId).digest('base64url')
}

/** The record key of a cookie that names no user (`session:<hash>`): sessions from before cookies did. */
export function sessionKey (sessionId: string): string {
  return `${SESSION_PREFIX}${hashOf(sessionId)}`
}

/** The record key of a cookie that names its user: `session:<u>.<hash>`, u = base64url(utf8 userId). */
export function userSessionKey (sessionId: string, userPart: string): string {
  return `${SESSION_PREFIX}${userPart}.${hashOf(sessionId)}`
}

/** The user part of a new cookie, or undefined when the id is too long to carry (then it is left out). */
function userPartOf (userId: string): string | undefined {
  const part = Buffer.from(userId, 'utf8').toString('base64url')
  return part.length <= MAX_USER_PART ? part : undefined
}

/**
 * Reads an unsigned cookie value: `<sessionId>` (old) or `<sessionId>.<u>`. The user part must be
 * canonical base64url (it re-encodes to itself), so one user has exactly one spelling.
 */
export function parseSessionCookie (value: string): SessionCookie | undefined {
  const dot = value.indexOf('.')
  if (dot === -1) return SESSION_ID.test(value) ? { key: sessionKey(value), userId: undefined } : undefined
  const id = value.slice(0, dot)
  const userPart = value.slice(dot + 1)
  if (!SESSION_ID.test(id) || !USER_PART.test(userPart)) return undefined
  const userId = Buffer.from(userPart, 'base64url').toString('utf8')
  if (userId === '' || Buffer.from(userId, 'utf8').toString('base64url') !== userPart) return undefined
  return { key: userSessionKey(id, userPart), userId }
}

export class SessionManager {
  readonly cookieName: string
  readonly #options: SessionManagerOptions
  readonly #signer: Signer
  readonly #verified = new Map<string, SessionCookie>()
  readonly #cookieOptions: { path: string, httpOnly: true, sameSite: 'lax', secure: boolean }

  constructor (options: SessionManagerOptions) {
    this.#options = options
    this.#signer = new Signer(options.secrets, 'sha256')
    this.cookieName = options.secure ? '__Host-lr_session' : 'lr_session'
    this.#cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax', secure: options.secure }
  }

  #rawCookie (request: FastifyRequest): string | undefined {
    // Parsed already when the host app (or our auth routes) run @fastify/cookie's hook.
    const parsed = request.cookies as Record<string, string | undefined> | null
    if (parsed !== null && parsed !== undefined) return parsed[this.cookieName]
    return cookieFromHeader(request.headers.cookie, this.cookieName)
  }

  /**
   * What the request's session cookie says, when it is validly signed: undefined when absent,
   * forged, altered or signed with an unknown secret. A cookie value that verified once always
   * verifies (same secrets, same value), so the answer is remembered: the HMAC check and the
   * SHA-256 are then skipped for every later request of that browser. Only valid cookies are
   * remembered, and the map is bounded, so forged cookies cannot grow it.
   */
  cookie (request: FastifyRequest): SessionCookie | undefined {
    const raw = this.#rawCookie(request)
    if (raw === undefined) return undefined
    const known = this.#verified.get(raw)
    if (known !== undefined) return known
    if (raw.length > 512) return undefined
    const unsigned = this.#signer.unsign(raw)
    if (!unsigned.valid || unsigned.value === null) return undefined
    const cookie = parseSessionCookie(unsigned.value)
    if (cookie === undefined) return undefined
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) this.#verified.delete(this.#verified.keys().next().value as string)
    this.#verified.set(raw, cookie)
    return cookie
  }

  /** The session when it can be known without waiting (see TokenStore.peek); undefined means "ask read()". */
  peek (request: FastifyRequest): SessionRecord | undefined {
    const cookie = this.cookie(request)
    if (cookie === undefined) return undefined
    return this.#current(cookie, this.#options.store.peek<SessionRecord>(cookie.key)?.value)
  }

  /**
   * A well-formed record still within the session lifetime, for the user its cookie names (when it
   * names one), or undefined. A record of another user under this cookie's key can only have been
   * written there by someone with write access to the store: it is no session.
   */
  #current (cookie: SessionCookie, record: SessionRecord | undefined): SessionRecord | undefined {
    if (record === undefined || typeof record.userId !== 'string' || typeof record.createdAt !== 'number' || typeof record.signInId !== 'string') return undefined
    if (cookie.userId !== undefined && record.userId !== cookie.userId) return undefined
    if (this.#options.now() - record.createdAt > this.#options.maxAgeMs) return undefined
    return record
  }

  /** Reads the request's session from the store (CurrentUser shares one read per request). */
  async read (request: FastifyRequest, cookie = this.cookie(request)): Promise<SessionRecord | undefined> {
    if (cookie === undefined) return undefined
    return this.accept(request, cookie, await readRecord(this.#options.store, cookie.key))
  }

  /**
   * The session from what the store answered for the cookie's key (read here, or together with
   * the user's tokens by CurrentUser), or undefined when that is no valid session.
   */
  accept (request: FastifyRequest, cookie: SessionCookie, outcome: StoredRead<unknown>): SessionRecord | undefined {
    // A record we cannot decrypt is no session (sign in again); an unreachable store is a 503
    // (thrown by the reader), never a 500 and never a sign-out. Logged (reason only, never the
    // record) so operators see tampering or a retired key.
    if (!outcome.readable) {
      request.log.warn({ reason: outcome.error.reason }, 'lightroom-ims: stored session record is unreadable; the browser must sign in again')
      return undefined
    }
    const record = outcome.stored?.value as SessionRecord | undefined
    const current = this.#current(cookie, record)
    if (current === undefined && record !== undefined && cookie.userId !== undefined && record.userId !== cookie.userId) {
      request.log.warn({ reason: 'user-mismatch' }, 'lightroom-ims: stored session record names another user than its cookie; the browser must sign in again')
    }
    return current
  }

  /** A new random session id and sign-in id for a user; nothing is stored until start(). */
  prepare (userId: string): NewSession {
    const id = randomBytes(32).toString('base64url')
    const userPart = userPartOf(userId)
    return {
      cookieValue: userPart === undefined ? id : `${id}.${userPart}`,
      key: userPart === undefined ? sessionKey(id) : userSessionKey(id, userPart),
      record: { userId, createdAt: this.#options.now(), signInId: randomBytes(16).toString('base64url') }
    }
  }

  /**
   * Stores a prepared session and sets its cookie. Any session id the browser brought is discarded
   * and its record deleted, so an id planted before sign-in is never promoted to a signed-in one (fixation).
   */
  async start (request: FastifyRequest, reply: FastifyReply, session: NewSession): Promise<SessionRecord> {
    const previous = this.cookie(request)
    try {
      if (previous !== undefined) await this.#options.store.delete(previous.key)
      await this.#options.store.set(session.key, session.record, this.#options.maxAgeMs)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    reply.setCookie(this.cookieName, this.#signer.sign(session.cookieValue), {
      ...this.#cookieOptions,
      maxAge: Math.floor(this.#options.maxAgeMs / 1000)
    })
    return session.record
  }

  async destroy (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const cookie = this.cookie(request)
    try {
      if (cookie !== undefined) await this.#options.store.delete(cookie.key)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    this.clearCookie(reply)
  }

  clearCookie (reply: FastifyReply): void {
    reply.clearCookie(this.cookieName, this.#cookieOptions)
  }
}
