/**
 * How the PostgreSQL backend talks to its pool: every call bounded by operationTimeoutMs, and a
 * circuit breaker so that a database known to be down or hung costs a request nothing but a fast
 * rejection (503 LR_STORE_UNAVAILABLE upstream), never a wait.
 *
 * Breaker: the first call that times out or loses its connection marks the database down (waiting
 * for a busy pool does not: see acquire). While down, calls reject at once, except one probe at a
 * time (the next real call, at most every PROBE_INTERVAL_MS); any call that gets an answer marks it
 * up again. No timer runs while nobody calls.
 *
 * A connection whose query timed out is in an unknown state (the answer may still arrive): it is
 * released with an error, which makes the pool destroy it rather than hand it out again. The query
 * may still have run; the writes that matter are compare-and-set, correct whenever they land.
 */
import { ErrorCodes, LightroomError } from '../../errors.js'
import type { Pool, PoolClient, QueryResult } from 'pg'
import { messageOf } from '../backend-checks.js'
import { deadlines } from '../deadlines.js'
import { gate } from './gate.js'
import type { Statement } from './sql.js'

export type PostgresBackendFailure = 'unavailable' | 'timeout' | 'busy' | 'connection-failed' | 'query-failed'

/**
 * Every failure of this backend. The message names the operation and never carries a value; pg's
 * own error is not attached as `cause`, because its `detail` can quote a row.
 */
export class PostgresBackendError extends LightroomError {
  readonly code = ErrorCodes.POSTGRES_UNAVAILABLE
  /** The plugin answers a store it cannot reach with 503 (LR_STORE_UNAVAILABLE). */
  readonly statusCode = 503
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
/** How long a call may wait behind others for a busy pool: QUEUE_FACTOR × operationTimeoutMs, at least MIN_QUEUE_MS. */
const QUEUE_FACTOR = 5
const MIN_QUEUE_MS = 5000

export interface Connection {
  /** urgent: lock operations and writes, served before reads when the pool is busy. */
  query (operation: string, statement: Statement, values: unknown[], urgent?: boolean): Promise<QueryResult>
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

  /**
   * A timeout or a lost connection marks the database down, and turns away every call still
   * waiting for a pooled connection; any answer, even an error, marks it up. Being turned away
   * (unavailable) or out of queue time (busy) tells nothing either way.
   */
  function settled (error: unknown): void {
    probing = false
    const reason = error instanceof PostgresBackendError ? error.reason : undefined
    if (reason === 'unavailable' || reason === 'busy') return
    down = reason === 'timeout' || reason === 'connection-failed'
    if (!down) return
    nextProbeAt = Date.now() + Math.min(PROBE_INTERVAL_MS, timeoutMs)
    const turnedAway = new PostgresBackendError('unavailable', 'PostgreSQL: the database stopped answering while this call waited for a connection')
    for (const giveUp of [...waiters]) giveUp(turnedAway)
  }

  const byDefault = deadlinesFor(timeoutMs)
  // Calls waiting for a busy pool's next free connection: rejected at once when the database is
  // found down (see settled), otherwise bounded by queueMs.
  const waiters = new Set<(error: PostgresBackendError) => void>()
  const queueMs = Math.max(QUEUE_FACTOR * timeoutMs, MIN_QUEUE_MS)
  const poolMax = pool.options?.max ?? 10
  const slots = gate(poolMax)

  /**
   * A connection from the pool, through the gate (urgent calls first). Opening a new one is talking
   * to the database: bounded by operationTimeoutMs, and a failure or timeout marks it down. Waiting
   * behind other calls for a busy pool is this process being busy (a burst bigger than the pool):
   * bounded by queueMs, and it never marks the database down.
   */
  async function acquire (operation: string, urgent: boolean): Promise<PoolClient> {
    return await new Promise((resolve, reject) => {
      let waiting = true
      let holdsSlot = false
      let withdrawQueued = (): void => {}
      let timer: NodeJS.Timeout
      const giveUp = (error: PostgresBackendError): void => {
        if (!waiting) return
        waiting = false
        clearTimeout(timer)
        waiters.delete(giveUp)
        if (holdsSlot) slots.leave()
        else withdrawQueued()
        reject(error)
      }
      const wait = (ms: number, error: () => PostgresBackendError): void => {
        clearTimeout(timer)
        timer = setTimeout(() => { giveUp(error()) }, ms)
        timer.unref()
      }
      wait(queueMs, () => new PostgresBackendError('busy', `PostgreSQL ${operation}: no free pooled connection within ${queueMs} ms`))
      waiters.add(giveUp)
      withdrawQueued = slots.enter(urgent, () => {
        holdsSlot = true
        if (pool.idleCount === 0 && pool.totalCount < poolMax) {
          wait(timeoutMs, () => new PostgresBackendError('timeout', `PostgreSQL ${operation}: no connection within ${timeoutMs} ms`))
        }
        pool.connect().then((client) => {
          // Arrived after giving up: unused, so handed back healthy.
          if (!waiting) return client.release()
          waiting = false
          holdsSlot = false // now the caller's, left by its done()
          clearTimeout(timer)
          waiters.delete(giveUp)
          resolve(client)
        }, (error: unknown) => { giveUp(failure(operation, error)) })
      })
    })
  }

  async function withClient<T> (operation: string, ms: number, work: (client: PoolClient) => Promise<T>, urgent: boolean, bounded = deadlinesFor(ms)): Promise<T> {
    admit(operation)
    try {
      const client = await acquire(operation, urgent)
      // pg-pool listens for a client's errors only while it is idle: a server that goes away while
      // this one is checked out but between queries would emit an 'error' nobody handles, and crash
      // the process. The query in flight, or the next one, reports the failure instead.
      client.on('error', ignoreCheckedOutError)
      let active: PoolClient | undefined = client
      // Hands the connection back (destroyed when `broken`) and its slot to the next caller.
      const done = (broken?: Error): void => {
        if (active === undefined) return
        active = undefined
        client.removeListener('error', ignoreCheckedOutError)
        client.release(broken)
        slots.leave()
      }
      const result = await bounded.run(operation, async () => {
        try {
          const value = await work(client)
          done()
          return value
        } catch (error) {
          // An error the server sent leaves the connection usable; anything else does not.
          done(sqlStateOf(error) === undefined || brokenConnection(error) ? asError(error) : undefined)
          throw error
        }
        // Out of time with the query sent: the connection's state is unknown, so it is destroyed.
      }, () => { done(new Error('abandoned after a timeout')) })
      settled(undefined)
      return result
    } catch (error) {
      settled(error)
      throw error
    }
  }

  return {
    async query (operation, statement, values, urgent = false) {
      return await withClient(operation, timeoutMs, async (client) => await client.query({ ...statement, values }), urgent, byDefault)
    },
    withClient: async (operation, ms, work) => await withClient(operation, ms, work, true)
  }
}

function deadlinesFor (timeoutMs: number): ReturnType<typeof deadlines> {
  return deadlines(timeoutMs, {
    timeout: (operation) => new PostgresBackendError('timeout', `PostgreSQL ${operation}: no answer within ${timeoutMs} ms`),
    failed: failure
  })
}

function failure (operation: string, error: unknown): PostgresBackendError {
  if (error instanceof PostgresBackendError) return error
  const sqlState = sqlStateOf(error)
  const reason = sqlState === undefined || brokenConnection(error) ? 'connection-failed' : 'query-failed'
  return new PostgresBackendError(reason, `PostgreSQL ${operation} failed: ${messageOf(error)}${hint(sqlState)}`, sqlState)
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

/** See withClient: the failure reaches the caller through its query; the event itself carries nothing more. */
function ignoreCheckedOutError (): void {}
