/**
 * Who is signed in on this request, and with which tokens: the one place that joins the session
 * cookie to the user's token set, and the one per-request cache of both. `peek` answers without an
 * await when a synchronous store already holds both unchanged (the common case); `resolve` reads
 * them once per request; `accessToken` is what `request.lightroomToken()` runs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { loginRequired } from '../errors.js'
import type { NewSession, SessionManager, SessionRecord } from './session.js'
import { listsSignIn } from './sign-ins.js'
import type { TokenManager } from './token-manager.js'
import type { TokenSet } from './token-set.js'
import type { GetOptions } from './token-types.js'

export interface SignedIn {
  session: SessionRecord
  set: TokenSet
}

const kSession = Symbol('fastify-lightroom-ims.session')
const kTokenSet = Symbol('fastify-lightroom-ims.token-set')

interface RequestState {
  /** The session read for this request, shared by every call in it (a preHandler and the handler). */
  [kSession]: Promise<SessionRecord | undefined> | null
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

  constructor (sessions: SessionManager, tokens: TokenManager) {
    this.#sessions = sessions
    this.#tokens = tokens
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
    state[kSession] ??= this.#sessions.read(request)
    const session = await state[kSession]
    if (session === undefined) return undefined
    const set = state[kTokenSet] ?? (await this.#tokens.read(session.userId))?.value
    if (set === undefined || !belongs(set, session)) return undefined
    state[kTokenSet] = set
    return { session, set }
  }

  /**
   * Starts a new session for the user (the callback), and makes this very request see it: hooks
   * that run after the route (audit logs, onSend) must not act for whoever the cookie named before.
   */
  async startSession (request: FastifyRequest, reply: FastifyReply, prepared: NewSession): Promise<void> {
    const session = await this.#sessions.start(request, reply, prepared)
    const state = request as unknown as RequestState
    state[kSession] = Promise.resolve(session)
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
