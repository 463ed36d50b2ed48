/**
 * Every SQL statement the PostgreSQL backend runs, for one table. Expiry is the database's clock
 * (`now()`), so processes on machines whose clocks disagree still agree on what has expired; a
 * row whose `expires_at` has passed is treated as absent by every statement, whether or not the
 * sweep has removed it yet.
 */
import { LightroomConfigError } from '../../errors.js'

export const DEFAULT_TABLE = 'lightroom_ims_records'
/** Keys returned per scan page: big enough to be quick, small enough to hold no lock for long. */
export const SCAN_PAGE = 500

// Unquoted-identifier rules, lower case only: the name then means the same quoted or not, in our
// SQL and in a team's own migrations. 52 leaves room for the index's `_expires_at` suffix in
// PostgreSQL's 63-byte identifiers.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,51}$/

/** `table` or `schema.table`, checked and double-quoted. */
export function quotedTable (table: unknown): { table: string, index: string } {
  const parts = typeof table === 'string' ? table.split('.') : []
  if (parts.length < 1 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new LightroomConfigError('table', 'must be a lower-case SQL name such as "lightroom_ims_records" or "app.lightroom_ims_records" (letters, digits, _; at most 52 characters)')
  }
  return { table: parts.map((part) => `"${part}"`).join('.'), index: `"${parts[parts.length - 1]!}_expires_at"` }
}

/**
 * The schema, as the README prints it for teams that run their own migrations. `COLLATE "C"`:
 * keys compare bytewise, so the primary key's index serves the prefix scans and keyset pages.
 */
export function createTableSql (table = DEFAULT_TABLE): string {
  const names = quotedTable(table)
  return `CREATE TABLE IF NOT EXISTS ${names.table} (
  key        text COLLATE "C" PRIMARY KEY,
  value      text NOT NULL,
  expires_at timestamptz
);
CREATE INDEX IF NOT EXISTS ${names.index} ON ${names.table} (expires_at) WHERE expires_at IS NOT NULL;`
}

/**
 * Unnamed on purpose: a named (server-side prepared) statement breaks behind PgBouncer in
 * transaction pooling mode, where the next query may reach another server connection. Parsing
 * these one-row statements again costs microseconds; the local cache keeps them off the fast path.
 */
export interface Statement { text: string }

function statement (text: string): Statement {
  return { text }
}

type StatementName = 'get' | 'getMany' | 'set' | 'insertIfAbsent' | 'replaceIfEqual' | 'delete' | 'deleteIfEqual' | 'extendLock' | 'scanFirst' | 'scanAfter' | 'sweep'
export type Statements = Record<StatementName, Statement>

export function statementsFor (table: string): Statements {
  const t = quotedTable(table).table
  const live = '(expires_at IS NULL OR expires_at > now())'
  // $n milliseconds from now; a NULL TTL gives a NULL expiry (never expires).
  const expiry = (n: number): string => `now() + $${n}::float8 * interval '1 millisecond'`
  return {
    get: statement(`SELECT value FROM ${t} WHERE key = $1 AND ${live}`),
    // $1 is a text[]: every key of one request in one query (the primary key's index serves it).
    getMany: statement(`SELECT key, value FROM ${t} WHERE key = ANY($1::text[]) AND ${live}`),
    set: statement(`INSERT INTO ${t} AS r (key, value, expires_at) VALUES ($1, $2, ${expiry(3)})
      ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`),
    // "Only when absent", where an expired row counts as absent: compareAndSet(undefined) and tryLock.
    insertIfAbsent: statement(`INSERT INTO ${t} AS r (key, value, expires_at) VALUES ($1, $2, ${expiry(3)})
      ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
      WHERE r.expires_at IS NOT NULL AND r.expires_at <= now()`),
    // Under READ COMMITTED a concurrent writer waits for the row and re-checks `value = $2` on the
    // version it then sees: of several writers expecting the same value, one matches.
    replaceIfEqual: statement(`UPDATE ${t} SET value = $3, expires_at = ${expiry(4)} WHERE key = $1 AND value = $2 AND ${live}`),
    delete: statement(`DELETE FROM ${t} WHERE key = $1`),
    deleteIfEqual: statement(`DELETE FROM ${t} WHERE key = $1 AND value = $2 AND ${live}`),
    extendLock: statement(`UPDATE ${t} SET expires_at = ${expiry(3)} WHERE key = $1 AND value = $2 AND expires_at > now()`),
    // Keyset pagination: each page starts after the last key of the one before, never OFFSET.
    scanFirst: statement(`SELECT key FROM ${t} WHERE key LIKE $1 ESCAPE '\\' AND key NOT LIKE 'lock:%' AND ${live}
      ORDER BY key LIMIT ${SCAN_PAGE}`),
    scanAfter: statement(`SELECT key FROM ${t} WHERE key LIKE $1 ESCAPE '\\' AND key > $2 AND key NOT LIKE 'lock:%' AND ${live}
      ORDER BY key LIMIT ${SCAN_PAGE}`),
    // Bounded: at most $1 rows per run, skipping rows another sweeper or writer holds.
    sweep: statement(`DELETE FROM ${t} WHERE key IN (
      SELECT key FROM ${t} WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`)
  }
}

/** A LIKE pattern matching keys that start with `prefix`, its own `%`, `_` and `\` taken literally. */
export function likePrefix (prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, '\\$&')}%`
}
