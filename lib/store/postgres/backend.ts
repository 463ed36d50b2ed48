/**
 * PostgreSQL backend (pg 8): tokens that survive restarts, in the database a partner already runs.
 * One table; the primary key is the record key, the value the encrypted envelope, `expires_at` the
 * TTL. Locks are rows of the same table under `lock:` (see lock.ts).
 */
import type { Pool } from 'pg'
import { LightroomConfigError } from '../../errors.js'
import {
  checkRecordKey, checkScanPrefix, localCacheOption, operationTimeoutOption, ttlFor
} from '../backend-checks.js'
import { recentReads } from '../recent-reads.js'
import type { StoreBackend } from '../types.js'
import { connection } from './connection.js'
import { tryLock } from './lock.js'
import { DEFAULT_TABLE, SCAN_PAGE, createTableSql, likePrefix, quotedTable, statementsFor } from './sql.js'

export interface PostgresBackendOptions {
  /** The table, optionally schema-qualified. Default 'lightroom_ims_records'. */
  table?: string
  /** Upper bound of each database call (a scan page is one call). Default 1000. */
  operationTimeoutMs?: number
  /**
   * How long a value this process read may answer the request fast path without asking the
   * database again (default 1000 ms; 0: always ask). Refresh decisions, locks and writes always go
   * to the database; this bounds how long a sign-out done by another process can go unnoticed here.
   */
  localCacheMs?: number
}

export interface PostgresBackend extends StoreBackend {
  /** The table this backend uses, as given. */
  readonly table: string
  /** Creates the table and its index when missing (the SQL of createTableSql). Safe to run on every start, from every process. */
  createTable (): Promise<void>
  /** Deletes up to `limit` expired rows now; resolves how many. Writes also sweep: the first of a process, then at most once a minute. */
  sweepExpired (limit?: number): Promise<number>
}

const NAME = 'postgresBackend'
/** Expired rows a write-triggered sweep deletes at most, and how often a process runs one. */
const SWEEP_LIMIT = 1000
const SWEEP_INTERVAL_MS = 60_000
/** DDL may wait for another process's createTable; it gets longer than a request's call. */
const CREATE_TABLE_TIMEOUT_MS = 30_000

export function postgresBackend (pool: Pool, options: PostgresBackendOptions = {}): PostgresBackend {
  checkPool(pool)
  const table = options.table ?? DEFAULT_TABLE
  quotedTable(table)
  const timeoutMs = operationTimeoutOption(options.operationTimeoutMs)
  const localCacheMs = localCacheOption(options.localCacheMs)
  const sql = statementsFor(table)
  const db = connection(pool, timeoutMs)
  const recent = recentReads(localCacheMs)
  // The first write of a process sweeps (what piled up while it was down), then once an interval.
  let nextSweepAt = 0

  const ttl = (ttlMs: number | undefined): number | null => ttlFor(NAME, ttlMs) ?? null
  const recordKey = (key: string): string => {
    checkRecordKey(NAME, key)
    return key
  }

  async function sweepExpired (limit = SWEEP_LIMIT): Promise<number> {
    if (!Number.isInteger(limit) || limit <= 0) throw new RangeError(`${NAME}: sweepExpired() needs a positive whole number of rows`)
    return (await db.query('sweep', sql.sweep, [limit])).rowCount ?? 0
  }

  /** After a write: expired rows would otherwise stay until someone runs sweepExpired(). */
  function sweepNowAndThen (): void {
    const now = Date.now()
    if (now < nextSweepAt) return
    nextSweepAt = now + SWEEP_INTERVAL_MS
    // Best effort and off the request's path: a failure waits for the next interval.
    sweepExpired().catch(() => {})
  }

  async function write<T> (key: string, run: () => Promise<T>): Promise<T> {
    recent.forget(key)
    const result = await run()
    sweepNowAndThen()
    return result
  }

  const backend: PostgresBackend = {
    table,

    async createTable () {
      await db.withClient('createTable', Math.max(CREATE_TABLE_TIMEOUT_MS, timeoutMs), async (client) => {
        // Two processes starting together would race CREATE TABLE IF NOT EXISTS into a
        // unique-violation on the catalog: a transaction-scoped advisory lock serialises them and
        // is released by COMMIT on this same connection (never a session-level one).
        await client.query('BEGIN')
        try {
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`fastify-lightroom-ims:${table}`])
          await client.query(createTableSql(table))
          await client.query('COMMIT')
        } catch (error) {
          // Back to a usable connection before the pool hands it out again.
          await client.query('ROLLBACK').catch(() => {})
          throw error
        }
      })
    },

    sweepExpired,

    async get (key) {
      const begun = recent.begin()
      const result = await db.query('get', sql.get, [recordKey(key)])
      const value = result.rows[0]?.value as string | undefined
      recent.remember(key, value, begun)
      return value
    },

    async getMany (keys) {
      if (keys.length === 0) return []
      const begun = recent.begin()
      const result = await db.query('getMany', sql.getMany, [keys.map(recordKey)])
      const found = new Map((result.rows as Array<{ key: string, value: string }>).map((row) => [row.key, row.value]))
      return keys.map((key) => {
        const value = found.get(key)
        recent.remember(key, value, begun)
        return value
      })
    },

    async set (key, value, ttlMs) {
      const values = [recordKey(key), value, ttl(ttlMs)]
      await write(key, async () => await db.query('set', sql.set, values, true))
    },

    async compareAndSet (key, expected, value, ttlMs) {
      const values = expected === undefined ? [recordKey(key), value, ttl(ttlMs)] : [recordKey(key), expected, value, ttl(ttlMs)]
      const statement = expected === undefined ? sql.insertIfAbsent : sql.replaceIfEqual
      const result = await write(key, async () => await db.query('compareAndSet', statement, values, true))
      return result.rowCount === 1
    },

    async delete (key) {
      const values = [recordKey(key)]
      await write(key, async () => await db.query('delete', sql.delete, values, true))
    },

    async compareAndDelete (key, expected) {
      const values = [recordKey(key), expected]
      const result = await write(key, async () => await db.query('compareAndDelete', sql.deleteIfEqual, values, true))
      return result.rowCount === 1
    },

    async tryLock (name, ttlMs) {
      return await tryLock(db, sql, name, ttlMs)
    },

    async * scan (prefix) {
      checkScanPrefix(NAME, prefix)
      const pattern = likePrefix(prefix)
      let after: string | undefined
      for (;;) {
        const page = after === undefined
          ? await db.query('scan', sql.scanFirst, [pattern])
          : await db.query('scan', sql.scanAfter, [pattern, after])
        for (const row of page.rows as Array<{ key: string }>) yield row.key
        if (page.rows.length < SCAN_PAGE) return
        after = (page.rows[page.rows.length - 1] as { key: string }).key
      }
    }
  }
  if (localCacheMs > 0) backend.getSync = recent.answer
  return backend
}

/**
 * A pg.Pool, not a single pg.Client: the backend runs concurrent calls and replaces connections
 * that broke. And one with an 'error' listener: pg emits 'error' on the pool when an idle
 * connection dies (a database restart), and an EventEmitter without a listener throws it, which
 * ends the process.
 */
function checkPool (pool: unknown): void {
  const candidate = pool as { connect?: unknown, query?: unknown, totalCount?: unknown, listenerCount?: unknown } | null
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.connect !== 'function' ||
    typeof candidate.query !== 'function' || typeof candidate.totalCount !== 'number' || typeof candidate.listenerCount !== 'function') {
    throw new LightroomConfigError('pool', 'must be a pg 8 Pool (new pg.Pool(config)), not a single Client')
  }
  if ((candidate as unknown as Pool).listenerCount('error') === 0) {
    throw new LightroomConfigError('pool', "needs an 'error' listener (pool.on('error', ...)) first: without one, a database restart crashes the process")
  }
}
