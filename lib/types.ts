/** The decorators the plugin adds, typed by declaration merging on Fastify's own interfaces. */
import type { EventEmitter } from 'node:events'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { GetOptions, RenewOptions, RenewReport, TokenEvents } from './auth/token-types.js'
import type { BatchOptions, ReencryptReport } from './batch/types.js'
import type { ProviderMetadata } from './ims/discovery.js'
import type { LightroomClient } from './lightroom/client.js'

/** `app.lightroom`: what works without a request. */
export interface LightroomDecorator {
  /** A valid access token for a user, refreshed when needed: for background jobs. */
  tokenFor (userId: string, options?: GetOptions): Promise<string>
  /** preHandler: browsers are sent to sign in (302, with returnTo), API callers get 401 JSON with `loginUrl`. */
  requireLogin (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Relative URL of the login route. */
  loginUrl (returnTo?: string): string
  /** Relative URL of the logout route (POST it from a form). */
  logoutUrl (): string
  /**
   * Renews every stored grant whose refresh token is older than `olderThanSeconds` (default: the
   * renewRefreshAfterSeconds option): `concurrency` users at once, `maxPerSecond` IMS calls, stops on
   * `signal`. Safe on every instance at once. A store failure rejects with LightroomBatchError (`report`).
   */
  renewExpiring (options?: RenewOptions): Promise<RenewReport>
  /** Revokes a user's grant at IMS and deletes their tokens (all their sessions then need a new sign-in). */
  signOut (userId: string): Promise<void>
  /** A Lightroom API client acting for a user (background jobs): tokens from tokenFor, one forced refresh on a 401. */
  api (userId: string): LightroomClient
  /** Rewrites every token and session record under the current (first) encryption key; resumable. Run after adding a key. */
  reencryptAll (options?: BatchOptions<ReencryptReport>): Promise<ReencryptReport>
  /** refresh, logout, refreshFailed, signIn: for metrics and audit logs; payloads never contain tokens. */
  readonly events: EventEmitter<TokenEvents>
  /** The validated discovery metadata. */
  readonly provider: Readonly<ProviderMetadata>
}

/** What may be shown about a user's tokens: times only. */
export interface TokenInfo {
  userId: string
  /** Epoch ms when the access token expires. */
  accessExpiresAt: number
  /** Epoch ms when the current refresh token was issued, when known. */
  refreshIssuedAt: number | undefined
  /** Epoch ms when the refresh token expires, when the provider says. */
  refreshExpiresAt: number | undefined
  /** Epoch ms when these tokens were received. */
  receivedAt: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** A valid access token for the signed-in user; rejects with LightroomAuthError (401 LR_LOGIN_REQUIRED, 503 LR_IMS_UNAVAILABLE, ...). */
    lightroomToken (options?: GetOptions): Promise<string>
    /** The signed-in IMS user id, or undefined. */
    lightroomUserId (): Promise<string | undefined>
    /** A Lightroom API client for the signed-in user; its calls reject with LR_LOGIN_REQUIRED without a session. */
    lightroomApi (): LightroomClient
    /** When the signed-in user's tokens expire, for display and monitoring (never the tokens); undefined when signed out. Does not refresh. */
    lightroomTokenInfo (): Promise<TokenInfo | undefined>
  }
  interface FastifyInstance {
    lightroom: LightroomDecorator
  }
}
