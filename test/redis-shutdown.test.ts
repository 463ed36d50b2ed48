/** The README's Redis shutdown advice works even when Redis is gone at shutdown (offline queue off). */
import { Redis } from 'ioredis'
import t from 'tap'
import { startRedisServer, redisUnavailableReason } from './helpers/redis-server.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'

await runUnlessUnavailable(redisUnavailableReason(), async () => {
  await t.test('quit() falling back to disconnect() closes the client even with Redis down', async (t) => {
    const server = await startRedisServer()
    t.teardown(server.close)
    // The client the README recommends.
    const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    redis.on('error', () => {})
    await new Promise((resolve) => redis.once('ready', resolve))
    t.equal(await redis.ping(), 'PONG')
    await server.stop()
    await new Promise((resolve) => setTimeout(resolve, 100))
    await t.rejects(redis.quit(), /enableOfflineQueue/, 'a bare quit() throws while Redis is down: why the README does not advise it')
    // The README's line, verbatim:
    await t.resolves(redis.quit().catch(() => redis.disconnect()), 'quit, falling back to disconnect, never throws')
    // Redis coming back must not bring the closed client back to life.
    await server.start()
    await new Promise((resolve) => setTimeout(resolve, 500))
    t.not(redis.status, 'ready', `the client stays closed when Redis is back (${redis.status})`)
  })
})
