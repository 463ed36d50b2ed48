/**
 * Who is signed in on this request, and with which tokens: the one place that joins the session
 * cookie to the user's token set, and the one per-request cache of both. `peek` answers without an
 * await when a synchronous store already holds both unchanged (the common case); `resolve` reads
 * them once per request, in one round trip when the cookie names its user (both keys are then
 * known up front); `accessToken` is what `request.lightroomToken()` runs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { loginRequired, storeUnavailable } from '../errors.js'
import type { StoredRead, TokenStore } from '../store/types.js'
import type { NewSession, SessionCookie, SessionManager, SessionRecord } from './session.js'
import { listsSignIn } from './sign-ins.js'
import { tokenKey, type TokenManager } from './token-manager.js'
import type { TokenSet } from './token-set.js'
import type { GetOptions } from './token-types.js'

export interface SignedIn {
  session: SessionRecord
  set: TokenSet
}

const kSession = Symbol('fastify-lightroom-ims.session')
const kTokenSet = Symbol('fastify-lightroom-ims.token-set')

/** The request's session, with the user's token set when it was read in the same round trip. */
interface SessionRead {
  session: SessionRecord
  /** Present when the tokens came with the session (`set` undefined: the user has none). */
  prefetched: { set: TokenSet | undefined } | undefined
}

interface RequestState {
  /** The session read for this request, shared by every call in it (a preHandler and the handler). */
  [kSession]: Promise<SessionRead | undefined> | null
  /** The newest token set this request has seen: read, peeked or refreshed. */
  [kTokenSet]: TokenSet | null
}

/** A session is valid only while the user's token record lists the sign-in it came from. */
function belongs (set: TokenSet, session: SessionRecord): boolean {
  return listsSignIn(set, session.signInId)
}

export class CurrentUser {
  readonly #sessions: SessionManager
  readonly #tokens: TokenManager
  readonly #store: TokenStore

  constructor (sessions: SessionManager, tokens: TokenManager, store: TokenStore) {
    this.#sessions = sessions
    this.#tokens = tokens
    this.#store = store
  }

  /** Declares the per-request slots up front, so every request object keeps one shape. */
  decorate (fastify: FastifyInstance): void {
    fastify.decorateRequest(kSession, null)
    fastify.decorateRequest(kTokenSet, null)
  }

  /** The signed-in user's usable token set when it is known without waiting; undefined means "resolve()". */
  peek (request: FastifyRequest): TokenSet | undefined {
    const session = this.#sessions.peek(request)
    if (session === undefined) return undefined
    const set = this.#tokens.peek(session.userId)
    return set !== undefined && belongs(set, session) ? set : undefined
  }

  /**
   * The request's session with the user's stored set (not refreshed), or undefined when signed out:
   * no session, no tokens, or a session whose sign-in the user's record no longer lists (signed out,
   * evicted, or a record that is missing or not the one it was signed in with).
   */
  async resolve (request: FastifyRequest): Promise<SignedIn | undefined> {
    const state = request as unknown as RequestState
    state[kSession] ??= this.#readSession(request)
    const read = await state[kSession]
    if (read === undefined) return undefined
    const { session, prefetched } = read
    const set = state[kTokenSet] ?? (prefetched !== undefined ? prefetched.set : (await this.#tokens.read(session.userId))?.value)
    if (set === undefined || !belongs(set, session)) return undefined
    state[kTokenSet] = set
    return { session, set }
  }

  async #readSession (request: FastifyRequest): Promise<SessionRead | undefined> {
    const cookie = this.#sessions.cookie(request)
    if (cookie === undefined) return undefined
    if (cookie.userId === undefined) {
      // A cookie from before cookies named the user: the session says whose tokens to read next.
      const session = await this.#sessions.read(request, cookie)
      return session === undefined ? undefined : { session, prefetched: undefined }
    }
    return await this.#readTogether(request, cookie, cookie.userId)
  }

  /**
   * The session and the user's token record in one store round trip. Each is then checked as if
   * read alone: the session must be well-formed, current and the cookie's user's (SessionManager),
   * the token record well-formed and not corrupt (TokenRecords); that the record lists the
   * session's sign-in is checked by resolve(), as for every other path.
   */
  async #readTogether (request: FastifyRequest, cookie: SessionCookie, userId: string): Promise<SessionRead | undefined> {
    let outcomes: Array<StoredRead<unknown>>
    try {
      outcomes = await this.#store.getMany([cookie.key, tokenKey(userId)])
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    const session = this.#sessions.accept(request, cookie, outcomes[0]!)
    // No session: the token record is left unexamined, as when it would not have been read at all.
    if (session === undefined) return undefined
    const stored = await this.#tokens.accept(userId, outcomes[1]!)
    return { session, prefetched: { set: stored?.value } }
  }

  /**
   * Starts a new session for the user (the callback), and makes this very request see it: hooks
   * that run after the route (audit logs, onSend) must not act for whoever the cookie named before.
   */
  async startSession (request: FastifyRequest, reply: FastifyReply, prepared: NewSession): Promise<void> {
    const session = await this.#sessions.start(request, reply, prepared)
    const state = request as unknown as RequestState
    state[kSession] = Promise.resolve({ session, prefetched: undefined })
    state[kTokenSet] = null
  }

  /** Ends the request's session (logout); the rest of this request sees a signed-out user. */
  async endSession (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await this.#sessions.destroy(request, reply)
    const state = request as unknown as RequestState
    state[kSession] = Promise.resolve(undefined)
    state[kTokenSet] = null
  }

  /** A valid access token for the request's user, refreshed when needed; LR_LOGIN_REQUIRED when signed out. */
  async accessToken (request: FastifyRequest, options?: GetOptions): Promise<string> {
    const state = request as unknown as RequestState
    if (options?.force !== true) {
      const known = this.peek(request)
      if (known !== undefined) {
        state[kTokenSet] = known
        return known.accessToken
      }
    }
    const current = await this.resolve(request)
    if (current === undefined) throw loginRequired()
    // Decided from the set just read; a refresh re-reads under its lock anyway.
    const set = await this.#tokens.usable(current.session.userId, options, current.set, request.log)
    state[kTokenSet] = set
    return set.accessToken
  }
}
