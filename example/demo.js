// `npm run demo`: the example app on http://localhost:3000.
//
// Without IMS_CLIENT_ID it runs against the mock Adobe IMS and mock Lightroom API bundled with the
// package, on loopback ports: no Adobe account and no network needed. With IMS_CLIENT_ID,
// IMS_CLIENT_SECRET and REDIRECT_URI it signs in with the real IMS and calls https://lr.adobe.io.
//
// Environment: PORT (default 3000; 0 picks a free port), HOST (default localhost), LOG_LEVEL
// (default info), TOKEN_KEYS and COOKIE_SECRET (random when unset: everything is forgotten on
// restart), REDIS_URL (share tokens between instances; then TOKEN_KEYS and COOKIE_SECRET are required).
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { encryptedStore, generateEncryptionKey, memoryBackend, parseEncryptionKeys } from 'fastify-lightroom-ims'
import { buildApp } from './app.js'

const env = process.env
const host = env.HOST || 'localhost'
const logger = { level: env.LOG_LEVEL || 'info' }
/** What shutdown closes, last opened first. */
const closers = []

async function main () {
  const config = env.IMS_CLIENT_ID ? realAdobe() : await mockAdobe()
  const app = await buildApp({
    ...config.adobe,
    store: await tokenStore(),
    cookieSecret: env.COOKIE_SECRET || randomBytes(32).toString('base64url'),
    logger
  })
  closers.push(async () => { await app.close() })
  await app.listen({ host, port: config.port })
  console.log(`Demo running at ${config.url}`)
}

/** Mock IMS and Lightroom on loopback ports: the whole flow, consent page included, offline. */
async function mockAdobe () {
  // Imported here only: a production server never loads the mocks.
  const { createMockIms, createMockLightroom } = await import('fastify-lightroom-ims/testing')
  // The redirect URI, and so the port, must be known before the plugin is registered.
  const port = env.PORT === '0' ? await freePort() : portFrom(env.PORT)
  const url = `http://localhost:${port}`
  const redirectUri = `${url}/auth/lightroom/callback`
  const ims = await createMockIms({
    // Registered like a credential in the Adobe Developer Console: only this exact redirect URI works.
    clients: [{ clientId: 'demo-client', clientSecret: 'demo-secret', redirectUris: [redirectUri] }],
    users: [{ sub: 'D3M0A1B2C3D4E5F6A7B8C9D0@AdobeID', name: 'Ada Lovelace', givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com' }],
    // Shows Allow / Deny, as real IMS does the first time a user meets an app.
    consent: true,
    // Short, so the remaining lifetime on /me visibly counts down and "Refresh now" resets it.
    accessTokenLifetimeSeconds: 15 * 60
  })
  closers.push(async () => { await ims.close() })
  const lightroom = await createMockLightroom({ ims })
  closers.push(async () => { await lightroom.close() })
  console.log(`Using a mock Adobe IMS (${ims.origin}) and Lightroom API (${lightroom.origin}); set IMS_CLIENT_ID for the real ones.`)
  return {
    port,
    url,
    adobe: { imsDiscoveryUrl: ims.discoveryUrl, lightroomBaseUrl: lightroom.origin, clientId: 'demo-client', clientSecret: 'demo-secret', redirectUri }
  }
}

/** The real IMS and lr.adobe.io: the plugin's defaults, so only the credential is needed. */
function realAdobe () {
  const missing = ['IMS_CLIENT_SECRET', 'REDIRECT_URI'].filter((name) => !env[name])
  if (missing.length > 0) throw new Error(`IMS_CLIENT_ID is set, so ${missing.join(' and ')} must be too (see example/README.md)`)
  return {
    port: portFrom(env.PORT),
    // Browse at the redirect URI's origin: the session cookie and the sign-out origin check belong to it.
    url: new URL(env.REDIRECT_URI).origin,
    adobe: { clientId: env.IMS_CLIENT_ID, clientSecret: env.IMS_CLIENT_SECRET, redirectUri: env.REDIRECT_URI }
  }
}

/** Tokens are only ever stored encrypted; Redis when instances must share them, else memory. */
async function tokenStore () {
  if (env.REDIS_URL) {
    // A random key or cookie secret per instance would make every other instance's records unreadable.
    if (!env.TOKEN_KEYS || !env.COOKIE_SECRET) throw new Error('REDIS_URL is set, so TOKEN_KEYS and COOKIE_SECRET must be too (see example/README.md)')
    const keys = parseEncryptionKeys(env.TOKEN_KEYS)
    // Imported here only: ioredis is an optional dependency, needed by multi-instance deployments alone.
    const [{ Redis }, { redisBackend }] = await Promise.all([import('ioredis'), import('fastify-lightroom-ims/redis')])
    const redis = new Redis(env.REDIS_URL, { enableOfflineQueue: false, lazyConnect: true })
    // Without a listener ioredis crashes the process; while Redis is down the plugin answers 503.
    redis.on('error', (error) => console.warn(`redis: ${error.message}`))
    await redis.connect()
    // quit() fails while Redis is unreachable (no offline queue): disconnect() then.
    closers.push(async () => { await redis.quit().catch(() => redis.disconnect()) })
    return encryptedStore(redisBackend(redis, { prefix: 'lr-demo:' }), { keys })
  }
  const keys = env.TOKEN_KEYS ? parseEncryptionKeys(env.TOKEN_KEYS) : [{ id: 'demo', key: generateEncryptionKey() }]
  return encryptedStore(memoryBackend(), { keys })
}

function portFrom (value) {
  if (value === undefined || value === '') return 3000
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got "${value}"`)
  return port
}

/** PORT=0 (what the browser test uses): ask the OS for a free port, then give it back for the app. */
async function freePort () {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

let stopping = false
async function shutdown (signal) {
  if (stopping) process.exit(1) // a second Ctrl-C: stop waiting
  stopping = true
  // Open connections get this long to finish before the process gives up on them.
  setTimeout(() => process.exit(1), 10_000).unref()
  for (const close of closers.reverse()) {
    await close().catch((error) => console.error(`shutdown: ${error.message}`))
  }
  if (signal !== undefined) console.log(`Demo stopped (${signal})`)
}

process.on('SIGINT', () => { shutdown('SIGINT') })
process.on('SIGTERM', () => { shutdown('SIGTERM') })

try {
  await main()
} catch (error) {
  console.error(`Demo failed to start: ${error.message}`)
  process.exitCode = 1
  await shutdown()
}
