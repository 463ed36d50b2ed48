/**
 * Refresh locks as rows of the records table, under `lock:<name>`: the value is a random owner id,
 * `expires_at` the lease. Each operation is one statement, so any pooled connection can run it:
 * no session-level advisory lock (that would belong to whichever connection took it, and a pool
 * hands the release to another one), and a crashed holder's lease simply runs out.
 */
import { randomBytes } from 'node:crypto'
import { LOCK_NAMESPACE, checkLockName, lockTtlFor } from '../backend-checks.js'
import type { BackendLock } from '../types.js'
import type { Connection } from './connection.js'
import type { Statements } from './sql.js'

const NAME = 'postgresBackend'

export async function tryLock (db: Connection, sql: Statements, name: string, ttlMs: number): Promise<BackendLock | undefined> {
  checkLockName(NAME, name)
  const ms = lockTtlFor(NAME, ttlMs)
  const key = LOCK_NAMESPACE + name
  // 128 random bits: owners are compared, never guessed.
  const owner = randomBytes(16).toString('base64url')
  // Taken when absent or expired (a crashed holder's lease), atomically.
  const taken = await db.query('lock', sql.insertIfAbsent, [key, owner, ms], true)
  if (taken.rowCount !== 1) return undefined
  return {
    owner,
    async extend (ttl) {
      const extended = await db.query('extend lock', sql.extendLock, [key, owner, lockTtlFor(NAME, ttl)], true)
      return extended.rowCount === 1
    },
    async release () {
      await db.query('release lock', sql.deleteIfEqual, [key, owner], true)
    }
  }
}
