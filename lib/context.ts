import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { ProviderMetadata } from './ims/discovery.js'
import type { IdTokenVerifier } from './ims/id-token.js'
import type { ImsClient } from './ims/client.js'
import type { ResolvedOptions } from './options.js'
import type { SessionManager } from './auth/session.js'
import type { TokenManager } from './auth/token-manager.js'

/** The pieces the routes and decorators share; built once per registration by plugin.ts. */
export interface PluginContext {
  options: ResolvedOptions
  provider: ProviderMetadata
  ims: ImsClient
  idTokens: IdTokenVerifier
  sessions: SessionManager
  tokens: TokenManager
  now: () => number
  /** Names and attributes of the short-lived cookies holding the OAuth state and PKCE verifier. */
  flowCookies: { state: string, verifier: string, options: { path: string, httpOnly: true, sameSite: 'lax', secure: boolean, maxAge: number } }
  /** Builds the IMS authorize URL and sets the flow cookies (@fastify/oauth2). */
  authorizationUrl: (request: FastifyRequest, reply: FastifyReply) => Promise<string>
  /** Revokes the user's grant at IMS (best effort) and deletes their tokens. */
  signOut: (userId: string, log: FastifyBaseLogger) => Promise<void>
  /** Relative URL of the login route, with returnTo when given. */
  loginPath: (returnTo?: string) => string
}
