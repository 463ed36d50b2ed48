/** The request decorators and `app.lightroom`: thin doors onto the services. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { renewExpiring } from './auth/renewal.js'
import { reencryptAll } from './store/reencrypt-all.js'
import { TOKEN_PREFIX } from './auth/token-records.js'
import { SESSION_PREFIX } from './auth/session.js'
import type { GetOptions } from './auth/token-types.js'
import type { PluginContext } from './context.js'
import { requireLoginHandler } from './routes/require-login.js'
import type { LightroomDecorator, TokenInfo } from './types.js'

export function decorateRequests (fastify: FastifyInstance, ctx: PluginContext): void {
  const { currentUser, lightroomApi } = ctx
  currentUser.decorate(fastify)
  fastify.decorateRequest('lightroomToken', async function (this: FastifyRequest, options?: GetOptions): Promise<string> {
    return await currentUser.accessToken(this, options)
  })
  fastify.decorateRequest('lightroomUserId', async function (this: FastifyRequest): Promise<string | undefined> {
    return (await currentUser.resolve(this))?.session.userId
  })
  fastify.decorateRequest('lightroomTokenInfo', async function (this: FastifyRequest): Promise<TokenInfo | undefined> {
    const set = (await currentUser.resolve(this))?.set
    if (set === undefined) return undefined
    return { userId: set.userId, accessExpiresAt: set.accessExpiresAt, refreshIssuedAt: set.refreshIssuedAt, refreshExpiresAt: set.refreshExpiresAt, receivedAt: set.receivedAt }
  })
  fastify.decorateRequest('lightroomApi', function (this: FastifyRequest) {
    return lightroomApi(async (options) => await currentUser.accessToken(this, options))
  })
}

export function lightroomDecorator (ctx: PluginContext): LightroomDecorator {
  const { tokens, store, options } = ctx
  // Only the documented options go through: nothing a caller passes can stand in for the store read.
  const tokenFor = async (userId: string, getOptions?: GetOptions): Promise<string> =>
    (await tokens.usable(userId, { force: getOptions?.force, rejectedAccessToken: getOptions?.rejectedAccessToken })).accessToken
  return {
    tokenFor,
    api: (userId) => ctx.lightroomApi(async (getOptions) => await tokenFor(userId, getOptions)),
    requireLogin: requireLoginHandler(ctx.currentUser, ctx.loginPath),
    loginUrl: ctx.loginPath,
    logoutUrl: () => `${ctx.routeBase}/logout`,
    renewExpiring: async (renew) => await renewExpiring(tokens, store, ctx.now, options.renewRefreshAfterMs, ctx.log, renew),
    signOut: async (userId) => { await tokens.signOut(userId) },
    reencryptAll: async (batch) => await reencryptAll(store, [TOKEN_PREFIX, SESSION_PREFIX], ctx.log, batch),
    events: tokens.events,
    provider: Object.freeze({ ...ctx.provider })
  }
}
