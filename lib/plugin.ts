/**
 * `app.register(lrImsPlugin, options)`: checks the options, builds the services, registers the
 * sign-in routes and adds the decorators. Everything else lives in the services it wires.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { decorateRequests, lightroomDecorator } from './decorators.js'
import { LightroomConfigError, REGISTRATION } from './errors.js'
import { resolveOptions, type LightroomImsOptions } from './options.js'
import { authRoutes } from './routes/index.js'
import { buildServices } from './services.js'
import { testingHooks, type TestingHooks } from './testing-hooks.js'
import './types.js'

async function lightroomIms (fastify: FastifyInstance, rawOptions: LightroomImsOptions): Promise<void> {
  if (fastify.hasDecorator('lightroom')) {
    // Said plainly: Fastify's own complaint would be a duplicate route or decorator, which never says why.
    throw new LightroomConfigError(REGISTRATION, 'is registered twice on the same Fastify instance; register it once, or each registration in its own encapsulated plugin with its own routePrefix')
  }
  const options = resolveOptions(rawOptions)
  const hooks: TestingHooks = (rawOptions as LightroomImsOptions | undefined)?.[testingHooks] ?? {}
  const ctx = await buildServices(fastify, options, hooks)
  await fastify.register(authRoutes(ctx))
  decorateRequests(fastify, ctx)
  fastify.decorate('lightroom', lightroomDecorator(ctx))
}

export const lrImsPlugin = fp(lightroomIms, { fastify: '5.x', name: 'fastify-lightroom-ims' })
export default lrImsPlugin
