/**
 * How the PostgreSQL backend talks to its pool: every call bounded by operationTimeoutMs, and a
 * circuit breaker so that a database known to be down or hung costs a request nothing but a fast
 * rejection (503 LR_STORE_UNAVAILABLE upstream), never a wait.
 *
 * Breaker: the first query that times out or loses its connection marks the database down (a call
 * that ran out of time waiting for a free pooled connection does not: that is this process being
 * busy, not the database). While down, calls reject at once, except one probe at a time (the next
 * real call, at most every PROBE_INTERVAL_MS); any call that gets an answer marks it up again. No
 * timer runs while nobody calls.
 *
 * A connection whose query timed out is in an unknown state (the answer may still arrive): it is
 * released with an error, which makes the pool destroy it rather than hand it out again. The query
 * may still have run; the writes that matter are compare-and-set, correct whenever they land.
 */
import type { Pool, PoolClient, QueryResult } from 'pg'
import { messageOf } from '../backend-checks.js'
import { deadlines } from '../deadlines.js'
import type { Statement } from './sql.js'

export type PostgresBackendFailure = 'unavailable' | 'timeout' | 'connection-failed' | 'query-failed'

/**
 * Every failure of this backend. The message names the operation and never carries a value; pg's
 * own error is not attached as `cause`, because its `detail` can quote a row.
 */
export class PostgresBackendError extends Error {
  readonly code = 'LR_POSTGRES_UNAVAILABLE'
  readonly reason: PostgresBackendFailure
  /** The SQLSTATE when the database answered with an error (42P01: the table is missing). */
  readonly sqlState: string | undefined

  constructor (reason: PostgresBackendFailure, message: string, sqlState?: string) {
    super(message)
    this.name = 'PostgresBackendError'
    this.reason = reason
    this.sqlState = sqlState
  }
}

const PROBE_INTERVAL_MS = 200

export interface Connection {
  query (operation: string, statement: Statement, values: unknown[]): Promise<QueryResult>
  /** Several statements on one connection, e.g. a transaction; bounded by timeoutMs as a whole. */
  withClient<T> (operation: string, timeoutMs: number, work: (client: PoolClient) => Promise<T>): Promise<T>
}

export function connection (pool: Pool, timeoutMs: number): Connection {
  let down = false
  let probing = false
  let nextProbeAt = 0

  function admit (operation: string): void {
    if (!down) return
    const now = Date.now()
    if (probing || now < nextProbeAt) {
      throw new PostgresBackendError('unavailable', `PostgreSQL ${operation}: the database is not answering; retrying shortly`)
    }
    probing = true
  }

  /** A timeout or a lost connection marks the database down; any answer, even an error, marks it up. */
  function settled (error: unknown): void {
    probing = false
    down = error instanceof PostgresBackendError && (error.reason === 'timeout' || error.reason === 'connection-failed')
    if (down) nextProbeAt = Date.now() + Math.min(PROBE_INTERVAL_MS, timeoutMs)
  }

  const byDefault = deadlinesFor(timeoutMs)

  async function withClient<T> (operation: string, ms: number, work: (client: PoolClient) => Promise<T>, bounded = deadlinesFor(ms)): Promise<T> {
    admit(operation)
    let expired = false
    let queryTimedOut = false
    let active: PoolClient | undefined
    const abandon = (): void => {
      expired = true
      queryTimedOut = active !== undefined
      const client = active
      active = undefined
      client?.release(new Error('abandoned after a timeout'))
    }
    try {
      const result = await bounded.run(operation, async () => {
        const client = await pool.connect()
        if (expired) {
          // Arrived after the deadline: unused, so still healthy.
          client.release()
          throw new Error('connected too late')
        }
        active = client
        try {
          const value = await work(client)
          if (active === client) client.release()
          return value
        } catch (error) {
          // An error the server sent leaves the connection usable; anything else does not.
          if (active === client) client.release(sqlStateOf(error) === undefined || brokenConnection(error) ? asError(error) : undefined)
          throw error
        } finally {
          active = undefined
        }
      }, abandon)
      settled(undefined)
      return result
    } catch (error) {
      // Out of time while still waiting for a pooled connection: this process is busy (a burst
      // larger than the pool), which says nothing about the database. Only a query that got no
      // answer, or a connection that failed, marks it down.
      if (expired && !queryTimedOut) probing = false
      else settled(error)
      throw error
    }
  }

  return {
    async query (operation, statement, values) {
      return await withClient(operation, timeoutMs, async (client) => await client.query({ ...statement, values }), byDefault)
    },
    withClient: async (operation, ms, work) => await withClient(operation, ms, work)
  }
}

function deadlinesFor (timeoutMs: number): ReturnType<typeof deadlines> {
  return deadlines(timeoutMs, {
    timeout: (operation) => new PostgresBackendError('timeout', `PostgreSQL ${operation}: no answer within ${timeoutMs} ms`),
    failed: (operation, error) => {
      const sqlState = sqlStateOf(error)
      const reason = sqlState === undefined || brokenConnection(error) ? 'connection-failed' : 'query-failed'
      return new PostgresBackendError(reason, `PostgreSQL ${operation} failed: ${messageOf(error)}${hint(sqlState)}`, sqlState)
    }
  })
}

/** A five-character SQLSTATE: the server answered. Node's own codes (ECONNREFUSED) are not. */
function sqlStateOf (error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/** Class 08 (connection exception), shutdowns (57P0x), too many connections (53300). */
function brokenConnection (error: unknown): boolean {
  const sqlState = sqlStateOf(error)
  return sqlState !== undefined && (sqlState.startsWith('08') || sqlState.startsWith('57P') || sqlState === '53300')
}

function hint (sqlState: string | undefined): string {
  return sqlState === '42P01' ? ' (the table does not exist: run backend.createTable() or the SQL in the README)' : ''
}

function asError (error: unknown): Error {
  return error instanceof Error ? error : new Error(messageOf(error))
}
