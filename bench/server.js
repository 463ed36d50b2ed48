// One benchmark target per process, so autocannon (in the parent) and the server each get a core.
// Usage: node bench/server.js <case>; prints one JSON line { port, cookie } when ready.
import Fastify from 'fastify'
import secureSession from '@fastify/secure-session'
import lrImsPlugin, { encryptedStore, memoryBackend } from 'fastify-lightroom-ims'
import { redisBackend } from 'fastify-lightroom-ims/redis'
import { postgresBackend } from 'fastify-lightroom-ims/postgres'
import { createMockIms, testingHooks } from 'fastify-lightroom-ims/testing'
import { randomBytes } from 'node:crypto'
import { signIn } from './sign-in.js'

const which = process.argv[2]
const keys = [{ id: 'bench', key: randomBytes(32) }]
const app = Fastify({ logger: false })
let ims
let cookie = ''
let clock = Date.now()
let signedInUser
const now = () => clock

async function lightroomApp (backend, extra = {}) {
  ims = await createMockIms({ now })
  await app.register(lrImsPlugin, {
    clientId: 'test-client',
    clientSecret: 'test-secret',
    redirectUri: 'http://127.0.0.1/auth/lightroom/callback',
    discoveryUrl: ims.discoveryUrl,
    cookieSecret: 'bench-cookie-secret-long-enough-0123456789',
    store: encryptedStore(backend, { keys }),
    [testingHooks]: { now },
    ...extra
  })
  app.get('/token', async (request) => {
    const token = await request.lightroomToken()
    return { length: token.length }
  })
  // Bench controls: move the shared fake clock, read the mock IMS's counters.
  app.post('/__advance', async (request) => { clock += Number(request.query.ms); return { ok: true } })
  app.get('/__counts', async () => ({ refresh: ims.count('token:refresh_token') }))
}

switch (which) {
  case 'bare':
    app.get('/token', async () => ({ length: 0 }))
    break
  case 'memory':
    await lightroomApp(memoryBackend())
    break
  case 'redis':
  case 'redis-strict':
  case 'redis-strict-pipelined': {
    const { default: Redis } = await import('ioredis')
    // ioredis's defaults, as the README sets Redis up; redis-strict-pipelined adds its auto-pipelining
    // (the backend already sends the reads of one event-loop turn as one MGET).
    const enableAutoPipelining = which === 'redis-strict-pipelined'
    const redis = new Redis(process.env.BENCH_REDIS_URL, { enableOfflineQueue: false, lazyConnect: true, enableAutoPipelining })
    redis.on('error', () => {})
    await redis.connect()
    app.addHook('onClose', async () => { redis.disconnect() })
    // redis-strict: no local cache, every request asks Redis (session and tokens in one MGET).
    await lightroomApp(redisBackend(redis, { prefix: `bench:${process.pid}:`, ...(which.startsWith('redis-strict') ? { localCacheMs: 0 } : {}) }))
    break
  }
  case 'postgres':
  case 'postgres-strict': {
    const { default: pg } = await import('pg')
    const pool = new pg.Pool({ connectionString: process.env.BENCH_POSTGRES_URL, max: 10 })
    pool.on('error', () => {})
    app.addHook('onClose', async () => { await pool.end() })
    // postgres-strict: no local cache, every request asks the database (session and tokens in one query).
    const backend = postgresBackend(pool, { table: `bench_${process.pid}`, ...(which === 'postgres-strict' ? { localCacheMs: 0 } : {}) })
    await backend.createTable()
    await lightroomApp(backend)
    break
  }
  case 'secure-session': {
    // What a user might hand-roll: the whole token set in an encrypted cookie (libsodium secretbox).
    await app.register(secureSession, { key: randomBytes(32), cookie: { path: '/', httpOnly: true } })
    app.get('/__login', async (request) => {
      request.session.set('tokens', {
        accessToken: randomBytes(900).toString('base64url'),
        refreshToken: randomBytes(900).toString('base64url'),
        accessExpiresAt: Date.now() + 86_400_000,
        userId: 'A1B2C3D4E5F6A7B8C9D0E1F2@AdobeID'
      })
      return { ok: true }
    })
    app.get('/token', async (request, reply) => {
      const tokens = request.session.get('tokens')
      if (tokens === undefined || tokens.accessExpiresAt - Date.now() < 300_000) return reply.code(401).send()
      return { length: tokens.accessToken.length }
    })
    break
  }
  case 'lightroom': {
    // The partner API through the plugin, against the mocks of bench/lightroom-mocks.js.
    ims = undefined
    await app.register(lrImsPlugin, {
      clientId: 'test-client',
      clientSecret: 'test-secret',
      redirectUri: 'http://127.0.0.1/auth/lightroom/callback',
      discoveryUrl: process.env.BENCH_DISCOVERY_URL,
      lightroomBaseUrl: process.env.BENCH_LR_ORIGIN,
      cookieSecret: 'bench-cookie-secret-long-enough-0123456789',
      store: encryptedStore(memoryBackend(), { keys })
    })
    app.lightroom.events.on('signIn', ({ userId }) => { signedInUser = userId })
    app.get('/photo/:id', async (request, reply) => {
      const rendition = await request.lightroomApi().rendition(request.params.id, '2048')
      if (rendition === null) return reply.code(404).send()
      reply.type(rendition.contentType).header('content-length', rendition.contentLength)
      return reply.send(rendition.body)
    })
    // Walks every asset `rounds` times, 100 a page; RSS sampled after every page's worth of items.
    app.get('/__walk', async (request) => {
      const rounds = Number(request.query.rounds ?? 1)
      const lr = request.lightroomApi()
      const rss = [process.memoryUsage.rss()]
      let items = 0
      const started = performance.now()
      for (let round = 0; round < rounds; round++) {
        for await (const asset of lr.assets({ limit: 100 })) {
          if (asset.id.length === 32) items++
          if (items % 1000 === 0) rss.push(process.memoryUsage.rss())
        }
        rss.push(process.memoryUsage.rss())
      }
      return { items, ms: performance.now() - started, rss }
    })
    break
  }
  default:
    throw new Error(`unknown case ${which}`)
}

// A storm opens 1,000 connections at once: with Node's default backlog (511) the kernel drops the
// SYNs beyond it, and each dropped one costs its client a 1 s retransmit, which is then all the p99
// measures. Every case gets the same backlog, the bare route included.
const address = await app.listen({ port: 0, host: '127.0.0.1', backlog: 2048 })
if (which === 'secure-session') {
  const login = await app.inject('/__login')
  cookie = [].concat(login.headers['set-cookie'])[0].split(';')[0]
} else if (which !== 'bare') {
  cookie = await signIn(app)
}
let extra = {}
if (which === 'lightroom') {
  // For the direct-download baseline: the same user's token and a photo id, read through the app.
  const lr = app.lightroom
  const token = await lr.tokenFor(signedInUser)
  const first = await lr.api(signedInUser).assets({ limit: 1 }).next()
  const catalog = await lr.api(signedInUser).catalog()
  extra = { token, assetId: first.value.id, catalogId: catalog.id }
}
process.stdout.write(`${JSON.stringify({ url: address, cookie, imsOrigin: ims?.origin, ...extra })}\n`)
process.on('SIGTERM', async () => {
  await app.close()
  await ims?.close()
  process.exit(0)
})
