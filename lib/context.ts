import type { FastifyBaseLogger } from 'fastify'
import type { CurrentUser } from './auth/current-user.js'
import type { SessionManager } from './auth/session.js'
import type { TokenManager } from './auth/token-manager.js'
import type { ProviderMetadata } from './ims/discovery.js'
import type { IdTokenVerifier } from './ims/id-token.js'
import type { ImsClient } from './ims/client.js'
import type { LightroomClient, LightroomClientOptions } from './lightroom/client.js'
import type { ResolvedOptions } from './options.js'
import type { FlowRecords } from './routes/flow-record.js'
import type { TokenStore } from './store/types.js'

/** The services of one registration, built once by services.ts and shared by the routes and decorators. */
export interface PluginContext {
  options: ResolvedOptions
  provider: ProviderMetadata
  store: TokenStore
  ims: ImsClient
  idTokens: IdTokenVerifier
  sessions: SessionManager
  tokens: TokenManager
  /** The server side of sign-in flows: single use, with the nonce. */
  flows: FlowRecords
  currentUser: CurrentUser
  now: () => number
  /** The app's logger, for work done without a request (background jobs). */
  log: FastifyBaseLogger
  /** Names and attributes of the short-lived cookies holding the OAuth state and PKCE verifier. */
  flowCookies: { state: string, verifier: string, options: { path: string, httpOnly: true, sameSite: 'lax', secure: boolean, maxAge: number } }
  /** Where our routes live, Fastify prefix included. */
  routeBase: string
  /** Relative URL of the login route, with returnTo when given. */
  loginPath: (returnTo?: string) => string
  /** A Lightroom API client drawing its tokens from `accessToken`. */
  lightroomApi: (accessToken: LightroomClientOptions['accessToken']) => LightroomClient
}
