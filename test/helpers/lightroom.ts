/**
 * A signed-in app on the real plugin against the mock IMS and a mock Lightroom, for the tests of
 * the Lightroom partner API: `app.lightroom.api(userId)` is the client under test.
 */
import { request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { createMockIms, createMockLightroom } from '../../lib/testing/index.js'
import type { MockIms, MockLightroom, MockLightroomOptions } from '../../lib/testing/index.js'
import type { LightroomImsOptions } from '../../index.js'
import { harness, signIn } from './setup.js'
import type { Harness } from './setup.js'

export const PREFIX = 'while (1) {}\n'

export interface LightroomSetup {
  h: Harness
  ims: MockIms
  lr: MockLightroom
  app: FastifyInstance
  sub: string
  /** The signed-in browser's Cookie header. */
  cookie: string
  close: () => Promise<void>
}

export async function signedInLightroom (options: { lr?: Omit<MockLightroomOptions, 'ims'>, plugin?: Partial<LightroomImsOptions>, routes?: (app: FastifyInstance) => void } = {}): Promise<LightroomSetup> {
  const ims = await createMockIms()
  const lr = await createMockLightroom({ ims, ...options.lr })
  const h = await harness({
    sharedIms: ims,
    plugin: { lightroomBaseUrl: lr.origin, lightroomRetry: { retryBaseDelayMs: 1, maxRetryDelayMs: 5 }, ...options.plugin },
    routes: options.routes
  })
  const browser = h.browser()
  await signIn(browser)
  return {
    cookie: browser.cookieHeader(),
    h,
    ims,
    lr,
    app: h.app,
    sub: ims.users[0]!.sub,
    close: async () => {
      await h.close()
      await lr.close()
      await ims.close()
    }
  }
}

/** Revokes a token at the mock IMS, as a user disconnecting the app would (Lightroom then answers 403 4300). */
export async function revokeAtIms (ims: MockIms, token: string): Promise<void> {
  const client = ims.clients[0]!
  const form = new URLSearchParams({ token, token_type_hint: 'access_token', client_id: client.clientId, client_secret: client.clientSecret })
  const res = await request(`${ims.origin}/ims/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })
  await res.body.text()
}
