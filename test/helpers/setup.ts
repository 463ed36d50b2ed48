import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import lrImsPlugin, { encryptedStore, memoryBackend, type LightroomImsOptions, type StoreBackend, type TokenStore } from '../../index.js'
import { createMockIms, testingHooks, type MockIms, type MockImsOptions, type TestingHooks } from '../../lib/testing/index.js'
import { Browser } from './browser.js'

export const APP_ORIGIN = 'https://app.test'
export const KEY_A = { id: 'a', key: Buffer.alloc(32, 1) }
export const KEY_B = { id: 'b', key: Buffer.alloc(32, 2) }
export const COOKIE_SECRET = 'a-cookie-secret-that-is-long-enough-1234'

export interface Harness {
  ims: MockIms
  app: FastifyInstance
  backend: StoreBackend
  store: TokenStore
  /** Every log line the app wrote, as raw JSON text (scanned for leaked secrets). */
  logs: string[]
  /** Every error answer and every auth-route answer the app gave (headers and body). */
  responses: string[]
  /** Values that must never appear in a log line or those responses; close() fails the test if one does. */
  secrets: () => string[]
  browser: () => Browser
  close: () => Promise<void>
}

export interface HarnessOptions {
  ims?: MockImsOptions
  plugin?: Partial<LightroomImsOptions> & TestingHooks
  backend?: StoreBackend
  /** Reuse an existing mock IMS (several apps against one provider). */
  sharedIms?: MockIms
  routes?: (app: FastifyInstance) => void
  /** Runs before the plugin registers (a host app's own plugins). */
  beforePlugin?: (app: FastifyInstance) => Promise<void>
}

/** A mock IMS on a real port and an app registered against it, with logs captured at debug level. */
export async function harness (options: HarnessOptions = {}): Promise<Harness> {
  const ims = options.sharedIms ?? await createMockIms(options.ims)
  const logs: string[] = []
  const stream = new Writable({ write (chunk, _encoding, callback) { logs.push(String(chunk)); callback() } })
  const app = Fastify({ logger: { level: 'debug', stream } })
  const backend = options.backend ?? memoryBackend()
  const store = encryptedStore(backend, { keys: [KEY_A] })
  await options.beforePlugin?.(app)
  const client = ims.clients[0]!
  const secrets = (): string[] => [
    ...ims.issuedSecrets(),
    client.clientSecret,
    COOKIE_SECRET,
    KEY_A.key.toString('base64'),
    KEY_B.key.toString('base64')
  ]
  // The knobs travel under the testing symbol; the rest are the options users set.
  const { now, imsRetry, refreshLock, lightroomRetry, ...pluginOptions } = options.plugin ?? {}
  await app.register(lrImsPlugin, {
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    redirectUri: `${APP_ORIGIN}/auth/lightroom/callback`,
    discoveryUrl: ims.discoveryUrl,
    cookieSecret: COOKIE_SECRET,
    store,
    ...pluginOptions,
    [testingHooks]: { now, imsRetry: imsRetry ?? { retryBaseDelayMs: 5, maxRetryDelayMs: 50 }, refreshLock, lightroomRetry }
  })
  const responses: string[] = []
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 || request.url.startsWith('/auth/')) {
      responses.push(`${JSON.stringify(reply.getHeaders())}\n${typeof payload === 'string' ? payload : ''}`)
    }
    return payload
  })
  app.get('/', async () => ({ home: true }))
  app.get('/token', async (request) => ({ token: await request.lightroomToken() }))
  options.routes?.(app)
  await app.ready()
  return {
    ims,
    app,
    backend,
    store,
    logs,
    responses,
    secrets,
    browser: () => new Browser(app, APP_ORIGIN),
    close: async () => {
      await app.close()
      const leaks = findLeaks(secrets(), logs, responses)
      if (options.sharedIms === undefined) await ims.close()
      if (leaks.length > 0) throw new Error(`secrets leaked into logs or responses: ${leaks.join('; ')}`)
    }
  }
}

/**
 * Every harness checks, when it closes, that no token, code, client secret, cookie secret or
 * encryption key the run produced appears in a log line or in an error/auth response: the
 * "secrets never leak" rule holds across the whole suite, not just in the tests that look for it.
 */
function findLeaks (secrets: string[], logs: string[], responses: string[]): string[] {
  const leaks: string[] = []
  const logText = logs.join('\n')
  const responseText = responses.join('\n')
  for (const secret of secrets) {
    const label = `${secret.slice(0, 6)}… (${secret.length} chars)`
    if (logText.includes(secret)) leaks.push(`log: ${label}`)
    if (responseText.includes(secret)) leaks.push(`response: ${label}`)
  }
  return leaks
}

/** Runs the whole browser sign-in: login → IMS authorize → callback. Returns the callback's answer. */
export async function signIn (browser: Browser, returnTo?: string): Promise<ReturnType<Browser['get']>> {
  const login = returnTo === undefined ? '/auth/lightroom/login' : `/auth/lightroom/login?returnTo=${encodeURIComponent(returnTo)}`
  // Stop at the app's own post-sign-in redirect so the test can inspect the callback's answer.
  return await browser.follow(login, { stopAt: (location) => location.origin === APP_ORIGIN && !location.pathname.startsWith('/auth/') })
}

/** Token and session records only: what a sign-in leaves behind (flow records are the login's). */
export async function signInRecords (backend: StoreBackend): Promise<string[]> {
  return [...(await rawRecords(backend)).keys()].filter((key) => !key.startsWith('flow:'))
}

export async function rawRecords (backend: StoreBackend, prefix = ''): Promise<Map<string, string>> {
  const records = new Map<string, string>()
  for await (const key of backend.scan(prefix)) {
    const value = await backend.get(key)
    if (value !== undefined) records.set(key, value)
  }
  return records
}
