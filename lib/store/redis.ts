/**
 * Redis backend (ioredis 5) for deployments with several processes sharing
 * tokens, sessions and refresh locks, on one Redis or on a Redis Cluster.
 *
 *   import { Redis } from 'ioredis'
 *   import { redisBackend } from 'fastify-lightroom-ims/redis'
 *   const redis = new Redis(url, { maxRetriesPerRequest: 1 })
 *   redis.on('error', (err) => log.warn({ err: err.message }, 'redis'))   // see below
 *   const store = encryptedStore(redisBackend(redis), { keys })
 *
 * Layout, with the default prefix:
 *   lr:<key>                 records (encrypted envelopes only): lr:tokens:<sub>, lr:session:<hash>
 *   lr:lock:<name>           locks, value = a random owner id
 * Record keys starting with `lock:` are refused, so the two can never collide
 * and scan() can skip lock keys by name. On a Cluster a user's keys carry the
 * user's hash tag (lr:{<tag>}tokens:<sub>): see redis/key-layout.ts.
 *
 * Failure behaviour: every call fails fast. When the client is not `ready`
 * (connecting, reconnecting, closed) it rejects at once instead of sitting in
 * ioredis's offline queue; otherwise it rejects after `operationTimeoutMs`.
 * The token manager turns that into 503 LR_STORE_UNAVAILABLE, and the next
 * call after Redis is back simply works. A call that timed out was still
 * sent, so Redis may apply it late; the token writes that matter are
 * compare-and-set, which stay correct whenever they land.
 *
 * The caller owns the client: this backend never connects, quits or listens
 * to it. ioredis emits 'error' on every failed (re)connection; without a
 * listener it prints each to stderr. Attach one.
 *
 * Only `import type` from ioredis here: it is an optional peer dependency and
 * apps that never import this file must not need it installed.
 */
import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { LightroomConfigError } from '../errors.js'
import {
  checkLockName, checkRecordKey, checkScanPrefix, localCacheOption, lockTtlFor, messageOf, operationTimeoutOption, ttlFor
} from './backend-checks.js'
import { deadlines } from './deadlines.js'
import { recentReads } from './recent-reads.js'
import { RedisBackendError } from './redis/errors.js'
import { clusterLayout, standaloneLayout } from './redis/key-layout.js'
import { coalescedReads } from './redis/coalesce.js'
import { groupBySlot } from './redis/key-slot.js'
import { isCluster, scanKeys } from './redis/scan.js'
import { scripts, type Script } from './redis/scripts.js'
import type { BackendLock, StoreBackend } from './types.js'

export { RedisBackendError, type RedisBackendFailure } from './redis/errors.js'
export { escapeGlob } from './redis/glob.js'

export interface RedisBackendOptions {
  /** Prepended to every key, so one Redis database can serve several apps. Default 'lr:'. */
  prefix?: string
  /** Upper bound of each Redis call (a SCAN batch is one call). Default 1000. */
  operationTimeoutMs?: number
  /**
   * How long a value this process read may answer the request fast path without asking Redis
   * again (default 1000 ms; 0: always ask). Refresh decisions, locks and writes always go to Redis;
   * what this bounds is how long a sign-out done by another process can go unnoticed here (the
   * revoked token is then refused by Lightroom, and the forced refresh finds no grant).
   */
  localCacheMs?: number
}

const NAME = 'redisBackend'

/** `client`: an ioredis `Redis`, or a `Cluster` (every master is scanned; a user's keys share a slot). */
export function redisBackend (client: Redis | Cluster, options: RedisBackendOptions = {}): StoreBackend {
  checkClient(client)
  const prefix = options.prefix ?? 'lr:'
  if (typeof prefix !== 'string') throw new LightroomConfigError('prefix', 'must be a string such as "lr:"')
  const timeoutMs = operationTimeoutOption(options.operationTimeoutMs)
  const cluster = isCluster(client)
  const layout = cluster ? clusterLayout(prefix) : standaloneLayout(prefix)
  const localCacheMs = localCacheOption(options.localCacheMs)
  const recent = recentReads(localCacheMs)
  const bounded = deadlines(timeoutMs, {
    timeout: (operation) => new RedisBackendError('timeout', `Redis ${operation}: no answer within ${timeoutMs} ms`),
    failed: (operation, error) => error instanceof RedisBackendError ? error : new RedisBackendError('command-failed', `Redis ${operation} failed: ${messageOf(error)}`)
  })

  /** Runs one Redis call: at once rejected when not connected, otherwise bounded in time. */
  async function call<T> (operation: string, run: () => Promise<T>): Promise<T> {
    // Not ready means ioredis would park the command in its offline queue until
    // it reconnects, possibly for ever: a request must get its 503 now instead.
    if (client.status !== 'ready') {
      throw new RedisBackendError('not-ready', `Redis ${operation}: the connection is ${client.status}`)
    }
    return await bounded.run(operation, run)
  }

  /**
   * EVALSHA, falling back to EVAL (which also caches the script) when Redis
   * does not know it: after a restart or SCRIPT FLUSH. NOSCRIPT means nothing
   * ran, so the retry cannot apply a write twice.
   */
  async function evaluate (operation: string, { source, sha }: Script, key: string, args: Array<string | number>): Promise<unknown> {
    return await call(operation, async () => {
      try {
        return await client.evalsha(sha, 1, key, ...args)
      } catch (error) {
        if (!messageOf(error).startsWith('NOSCRIPT')) throw error
        return await client.eval(source, 1, key, ...args)
      }
    })
  }

  /**
   * One MGET. A Cluster answers one only for keys of one slot: one user's session and tokens share
   * a slot (hash tags), so the request path stays one command; keys of several slots get one MGET
   * per slot, in parallel, each answer put back at its key's position.
   */
  async function mgetBySlot (redisKeys: string[]): Promise<Array<string | null>> {
    if (!cluster) return await client.mget(redisKeys)
    const groups = groupBySlot(redisKeys)
    if (groups.length === 1) return await client.mget(redisKeys)
    const values = new Array<string | null>(redisKeys.length).fill(null)
    await Promise.all(groups.map(async (positions) => {
      const answers = await client.mget(positions.map((position) => redisKeys[position]!))
      positions.forEach((position, i) => { values[position] = answers[i] ?? null })
    }))
    return values
  }

  // One bound (and one readiness check) per coalesced MGET, shared by every read in it.
  const coalesced = coalescedReads(async (keys) => await call('MGET', async () => await mgetBySlot(keys)))

  function recordKey (key: string): string {
    checkRecordKey(NAME, key)
    return layout.record(key)
  }

  function makeLock (redisKey: string, owner: string): BackendLock {
    return {
      owner,
      async extend (ttlMs) {
        const px = lockTtlFor(NAME, ttlMs)
        return await evaluate('extend lock', scripts.compareAndExpire, redisKey, [owner, px]) === 1
      },
      async release () {
        await evaluate('release lock', scripts.compareAndDelete, redisKey, [owner])
      }
    }
  }

  const backend: StoreBackend = {
    async get (key) {
      const redisKey = recordKey(key)
      const begun = recent.begin()
      const value = (await call('GET', async () => await client.get(redisKey))) ?? undefined
      recent.remember(key, value, begun)
      return value
    },

    async getMany (keys) {
      if (keys.length === 0) return []
      const redisKeys = keys.map(recordKey)
      // One begin() for the whole MGET: a local write to any key while it is in flight keeps all
      // of its answers out of the local cache, exactly as for get().
      const begun = recent.begin()
      const values = await coalesced(redisKeys)
      return keys.map((key, i) => {
        const value = values[i] ?? undefined
        recent.remember(key, value, begun)
        return value
      })
    },

    async set (key, value, ttlMs) {
      recent.forget(key)
      const redisKey = recordKey(key)
      const px = ttlFor(NAME, ttlMs)
      await call('SET', async () => {
        if (px === undefined) await client.set(redisKey, value)
        else await client.set(redisKey, value, 'PX', px)
      })
    },

    async compareAndSet (key, expected, value, ttlMs) {
      recent.forget(key)
      const redisKey = recordKey(key)
      const px = ttlFor(NAME, ttlMs)
      const args = [expected === undefined ? '0' : '1', expected ?? '', value, px ?? '']
      return await evaluate('compareAndSet', scripts.compareAndSet, redisKey, args) === 1
    },

    async delete (key) {
      recent.forget(key)
      const redisKey = recordKey(key)
      await call('DEL', async () => await client.del(redisKey))
    },

    async compareAndDelete (key, expected) {
      recent.forget(key)
      return await evaluate('compareAndDelete', scripts.compareAndDelete, recordKey(key), [expected]) === 1
    },

    async tryLock (name, ttlMs) {
      checkLockName(NAME, name)
      const px = lockTtlFor(NAME, ttlMs)
      const redisKey = layout.lock(name)
      // 128 random bits: owners are compared, never guessed.
      const owner = randomBytes(16).toString('base64url')
      let taken: string | null
      try {
        taken = await call('lock', async () => await client.set(redisKey, owner, 'PX', px, 'NX'))
      } catch (error) {
        // A SET that timed out may still be applied when Redis answers, leaving a lock no one
        // owns for its whole TTL. A release by owner, sent behind it on the same connection, runs
        // after it: it frees that lock, or finds nothing of ours.
        if (error instanceof RedisBackendError && error.reason === 'timeout') {
          client.eval(scripts.compareAndDelete.source, 1, redisKey, owner).catch(() => {})
        }
        throw error
      }
      return taken === 'OK' ? makeLock(redisKey, owner) : undefined
    },

    async * scan (keyPrefix) {
      checkScanPrefix(NAME, keyPrefix)
      for await (const redisKey of scanKeys(client, layout.pattern(keyPrefix), call)) {
        const key = layout.recordOf(redisKey)
        if (key !== undefined && key.startsWith(keyPrefix)) yield key
      }
      // SCAN may list a key twice while Redis resizes its table; the callers
      // (reencryptAll, renewExpiring) handle a key twice harmlessly.
    }
  }
  if (localCacheMs > 0) backend.getSync = recent.answer
  return backend
}

function checkClient (client: unknown): void {
  type Candidate = Partial<Record<'get' | 'set' | 'evalsha' | 'eval' | 'scan' | 'nodes', unknown>> & {
    status?: unknown, isCluster?: unknown, options?: { keyPrefix?: unknown, redisOptions?: { keyPrefix?: unknown } }
  }
  const candidate = client as Candidate | null
  // A Cluster is scanned node by node (nodes()), a single Redis with its own SCAN.
  const methods = ['get', 'set', 'evalsha', 'eval', candidate?.isCluster === true ? 'nodes' : 'scan'] as const
  if (typeof candidate !== 'object' || candidate === null ||
    typeof candidate.status !== 'string' ||
    methods.some((method) => typeof candidate[method] !== 'function')) {
    throw new LightroomConfigError('client', 'must be an ioredis 5 client (new Redis(url) or new Cluster(startupNodes))')
  }
  // ioredis adds keyPrefix to commands but not to SCAN's MATCH, and SCAN's
  // answers would come back with it: scan() would find nothing.
  const keyPrefix = candidate.options?.keyPrefix ?? candidate.options?.redisOptions?.keyPrefix
  if (typeof keyPrefix === 'string' && keyPrefix !== '') {
    throw new LightroomConfigError('client', 'must not use ioredis\'s keyPrefix option; pass redisBackend(client, { prefix }) instead')
  }
}
