/**
 * Which methods each endpoint takes and which handler answers it. Paths come
 * from the flavor (mock-ims-discovery.ts); this table is the same for both.
 */
import { handleAuthorize } from './authorize.js'
import type { ImsContext, ImsRequest } from './context.js'
import { discoveryDocument } from './discovery.js'
import { sendJson } from '../shared/http.js'
import { handleLogout, handleRevoke } from './revoke.js'
import { handleToken } from './token.js'
import type { MockImsEndpoint } from './types.js'
import { handleUserinfo } from './userinfo.js'

export interface Route {
  methods: string[]
  handle (ctx: ImsContext, request: ImsRequest): void | Promise<void>
}

export const ROUTES: Record<MockImsEndpoint, Route> = {
  discovery: {
    methods: ['GET'],
    handle: (ctx, { res }) => sendJson(res, 200,
      discoveryDocument(ctx.settings.flavor, ctx.origin, ctx.issuer, ctx.paths, ctx.settings.knownScopes))
  },
  keys: {
    methods: ['GET'],
    handle: (ctx, { res }) => sendJson(res, 200, ctx.signer.jwks)
  },
  // POST carries the consent page's decision (OIDC also allows POSTing authorization requests).
  authorize: { methods: ['GET', 'POST'], handle: handleAuthorize },
  token: { methods: ['POST'], handle: handleToken },
  userinfo: { methods: ['GET', 'POST'], handle: handleUserinfo },
  revoke: { methods: ['POST'], handle: handleRevoke },
  logout: { methods: ['GET'], handle: handleLogout }
}
