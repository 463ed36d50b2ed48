/**
 * Four app processes sharing one redis-server: test/helpers/multi-process.ts, over Redis. The
 * outage is a stop and a restart (SHUTDOWN SAVE, then the same port): the clients see the
 * connection drop and reject at once until they have reconnected.
 */
import { Redis } from 'ioredis'
import t from 'tap'
import { multiProcessSuite } from './helpers/multi-process.js'
import { startRedisServer, redisUnavailableReason } from './helpers/redis-server.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'

await runUnlessUnavailable(redisUnavailableReason(), async () => {
  const server = await startRedisServer()
  t.teardown(server.close)
  const redis = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
  redis.on('error', () => {})
  t.teardown(() => { redis.disconnect() })
  const PREFIX = 'lr:'

  await multiProcessSuite({
    name: 'Redis',
    worker: { kind: 'redis', url: server.url },
    lockHeld: async (name) => await redis.exists(`${PREFIX}lock:${name}`) === 1,
    async records () {
      const keys: string[] = []
      for await (const batch of redis.scanStream({ count: 100 }) as AsyncIterable<string[]>) keys.push(...batch)
      return await Promise.all(keys.map(async (key) => ({ key: key.slice(PREFIX.length), fields: [await redis.get(key) ?? '', key] })))
    },
    outage: { describe: 'stopped and restarted', begin: server.stop, end: server.start, lastsMs: 800 },
    // A client that knows it is disconnected rejects without sending anything.
    slowestWhileDownMs: 200,
    checkStats (t, stats) {
      t.ok(stats.every((stat) => stat.connection === 'ready'), 'every process is reconnected')
      t.ok(stats.every((stat) => stat.connectionErrors > 0), "every process saw ioredis 'error' events, handled by its listener")
    }
  })
})
