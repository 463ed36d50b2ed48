/**
 * Node's diagnostics_channel tracing channels, as undici and Fastify publish theirs: an APM agent,
 * an OpenTelemetry bridge or a metrics exporter subscribes by name, and nothing is paid while no one
 * does. Each is a TracingChannel (start, end, asyncStart, asyncEnd, error) whose context object
 * carries ids, names and times only: never a token, a code or a secret.
 */
import { tracingChannel } from 'node:diagnostics_channel'

export const CHANNELS = Object.freeze({
  /** The callback's work: code exchange, id_token check, tokens stored, session started. */
  signIn: 'fastify-lightroom-ims:sign-in',
  /** One refresh of a user's tokens, lock and store write included. */
  refresh: 'fastify-lightroom-ims:refresh',
  /** One call to IMS (token, revoke, userinfo), retries included. */
  imsRequest: 'fastify-lightroom-ims:ims-request',
  /** One call to the Lightroom API, retries and a forced refresh included. */
  lightroomRequest: 'fastify-lightroom-ims:lightroom-request',
  /** One call to the store's backend (memory, Redis, PostgreSQL...). */
  store: 'fastify-lightroom-ims:store'
} as const)

/** Filled in when the callback has answered: its status (303 is a sign-in) and, on success, the user. */
export interface SignInContext { statusCode?: number, userId?: string }
export interface RefreshContext { userId: string, reason: string }
export interface ImsRequestContext { endpoint: 'token' | 'revoke' | 'userinfo', grantType?: string }
export interface LightroomRequestContext { method: string, path: string }
/** `keyPrefix` is the record's kind (`tokens`, `session`, ...), never the rest of its key. */
export interface StoreContext { operation: string, keyPrefix: string }

export const signInChannel = tracingChannel<unknown, SignInContext>(CHANNELS.signIn)
export const refreshChannel = tracingChannel<unknown, RefreshContext>(CHANNELS.refresh)
export const imsRequestChannel = tracingChannel<unknown, ImsRequestContext>(CHANNELS.imsRequest)
export const lightroomRequestChannel = tracingChannel<unknown, LightroomRequestContext>(CHANNELS.lightroomRequest)
export const storeChannel = tracingChannel<unknown, StoreContext>(CHANNELS.store)

type Channel<C extends object> = ReturnType<typeof tracingChannel<unknown, C>>

/**
 * Runs `work` inside the channel's trace when someone listens; otherwise just runs it, with not so
 * much as an extra promise (this sits on store and HTTP calls).
 */
export function traced<C extends object, R> (channel: Channel<C>, context: C, work: () => Promise<R>): Promise<R> {
  if (!channel.hasSubscribers) return work()
  return channel.tracePromise(work, context)
}

/** The kind of a store key (`tokens:...` → `tokens`), for a context that must not name the user. */
export function keyPrefix (key: string): string {
  const colon = key.indexOf(':')
  return colon === -1 ? key : key.slice(0, colon)
}
