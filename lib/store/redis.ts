/**
 * Redis backend (ioredis 5) for deployments with several processes sharing
 * tokens, sessions and refresh locks.
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
 * and scan() can skip lock keys by name.
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
import { createHash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { ErrorCodes, LightroomConfigError, LightroomError } from '../errors.js'
import {
  LOCK_NAMESPACE, checkLockName, checkRecordKey, checkScanPrefix, localCacheOption, lockTtlFor, messageOf, operationTimeoutOption, ttlFor
} from './backend-checks.js'
import { deadlines } from './deadlines.js'
import { recentReads } from './recent-reads.js'
import type { BackendLock, StoreBackend } from './types.js'

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

export type RedisBackendFailure = 'not-ready' | 'timeout' | 'command-failed'

/**
 * Every failure of this backend. The message names the operation and never
 * carries a key's value; ioredis's own errors are not attached as `cause`
 * because they carry the command's arguments (the ciphertext).
 */
export class RedisBackendError extends LightroomError {
  readonly code = ErrorCodes.REDIS_UNAVAILABLE
  /** The plugin answers a store it cannot reach with 503 (LR_STORE_UNAVAILABLE). */
  readonly statusCode = 503
  readonly reason: RedisBackendFailure

  constructor (reason: RedisBackendFailure, message: string) {
    super(message)
    this.name = 'RedisBackendError'
    this.reason = reason
  }
}

const NAME = 'redisBackend'
/** Keys Redis examines per SCAN call: big enough to be quick, small enough not to block Redis. */
const SCAN_COUNT = 500

/**
 * Compare-and-set. ARGV: hasExpected ('1' | '0'), expected, value, ttl ('' = none).
 * GET on a missing key is `false` in Lua, which never equals a string.
 */
const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
`

/** Delete only when the value is ARGV[1]: compareAndDelete, and a lock's release by its owner. */
const COMPARE_AND_DELETE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

/** Push the expiry out only while ARGV[1] still owns the lock. */
const COMPARE_AND_EXPIRE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`

interface Script { source: string, sha: string }

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

const scripts = {
  compareAndSet: script(COMPARE_AND_SET),
  compareAndDelete: script(COMPARE_AND_DELETE),
  compareAndExpire: script(COMPARE_AND_EXPIRE)
}

export function redisBackend (client: Redis, options: RedisBackendOptions = {}): StoreBackend {
  checkClient(client)
  const prefix = options.prefix ?? 'lr:'
  if (typeof prefix !== 'string') throw new LightroomConfigError('prefix', 'must be a string such as "lr:"')
  const timeoutMs = operationTimeoutOption(options.operationTimeoutMs)
  const lockPrefix = prefix + LOCK_NAMESPACE
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

  function recordKey (key: string): string {
    checkRecordKey(NAME, key)
    return prefix + key
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
      const values = await call('MGET', async () => await client.mget(redisKeys))
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
      const redisKey = lockPrefix + name
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
      const full = prefix + keyPrefix
      // MATCH is a glob: a `*`, `?`, `[` or `\` in either prefix must match itself only.
      const pattern = `${escapeGlob(full)}*`
      let cursor = '0'
      do {
        const [next, keys] = await call('SCAN', async () => await client.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT))
        cursor = next
        for (const key of keys) {
          // Lock keys match a keyPrefix such as '' or 'lo'; they are never records.
          if (key.startsWith(lockPrefix)) continue
          yield key.slice(prefix.length)
        }
      } while (cursor !== '0')
      // SCAN may list a key twice while Redis resizes its table; the callers
      // (reencryptAll, renewExpiring) handle a key twice harmlessly.
    }
  }
  if (localCacheMs > 0) backend.getSync = recent.answer
  return backend
}

function checkClient (client: unknown): void {
  const candidate = client as Partial<Record<'get' | 'set' | 'evalsha' | 'eval' | 'scan', unknown>> & { status?: unknown, options?: { keyPrefix?: unknown } } | null
  if (typeof candidate !== 'object' || candidate === null ||
    typeof candidate.status !== 'string' ||
    (['get', 'set', 'evalsha', 'eval', 'scan'] as const).some((method) => typeof candidate[method] !== 'function')) {
    throw new LightroomConfigError('client', 'must be an ioredis 5 client (new Redis(url))')
  }
  // ioredis adds keyPrefix to commands but not to SCAN's MATCH, and SCAN's
  // answers would come back with it: scan() would find nothing.
  const keyPrefix = candidate.options?.keyPrefix
  if (typeof keyPrefix === 'string' && keyPrefix !== '') {
    throw new LightroomConfigError('client', 'must not use ioredis\'s keyPrefix option; pass redisBackend(client, { prefix }) instead')
  }
}

export function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
