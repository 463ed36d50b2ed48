/**
 * The StoreBackend contract over a real PostgreSQL server, then the plugin on top of it: the
 * table's schema, expiry, keyset scans, pool-safe locks, failures while the database is stopped
 * or hung, recovery, and key rotation for a fleet.
 */
import { readFileSync } from 'node:fs'
import pg from 'pg'
import t from 'tap'
import { encryptedStore } from '../lib/store/encrypted.js'
import { PostgresBackendError, createTableSql, postgresBackend, type PostgresBackend } from '../lib/store/postgres.js'
import { gate } from '../lib/store/postgres/gate.js'
import { likePrefix, statementsFor } from '../lib/store/postgres/sql.js'
import { tokenKey } from '../lib/auth/token-manager.js'
import { startPostgresServer, postgresUnavailableReason } from './helpers/postgres-server.js'
import { everyOperation, signedInOver } from './helpers/backend-calls.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'
import { COOKIE_SECRET, KEY_A, KEY_B, harness, rawRecords, signIn } from './helpers/setup.js'

await runUnlessUnavailable(postgresUnavailableReason(), main)

async function main (): Promise<void> {
  const server = await startPostgresServer()
  t.teardown(server.close)
  const pool = server.pool()
  const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
  let tables = 0
  /** Each test gets its own table, so tests never see each other's rows. */
  async function fresh (options: { operationTimeoutMs?: number, localCacheMs?: number } = {}, on = pool): Promise<{ backend: PostgresBackend, table: string }> {
    const table = `t${++tables}`
    const backend = postgresBackend(on, { table, ...options })
    await backend.createTable()
    return { backend, table }
  }
  async function rows (table: string): Promise<Array<{ key: string, value: string, ttl: number | null }>> {
    const result = await pool.query(`SELECT key, value, (extract(epoch FROM expires_at - now()) * 1000)::float8 AS ttl FROM ${table} ORDER BY key`)
    return result.rows
  }
  async function collect (iterable: AsyncIterable<string>): Promise<string[]> {
    const keys: string[] = []
    for await (const key of iterable) keys.push(key)
    return keys
  }
  /** Until a call succeeds again: the breaker lets a probe through every 200 ms. */
  async function untilAnswering (backend: PostgresBackend): Promise<void> {
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        await backend.get('probe')
        return
      } catch (error) {
        if (Date.now() > deadline) throw error
        await sleep(50)
      }
    }
  }

  t.test('createTable makes the table the README prints, idempotently, even from many processes at once', async (t) => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    t.ok(readme.includes(`\`\`\`sql\n${createTableSql()}\n\`\`\``), 'the README shows exactly the SQL createTable runs')
    const backends = Array.from({ length: 5 }, () => postgresBackend(pool, { table: 'created_together' }))
    await Promise.all(backends.map(async (backend) => { await backend.createTable() }))
    await backends[0]!.createTable()
    const columns = await pool.query(`SELECT column_name, data_type, is_nullable, collation_name FROM information_schema.columns
      WHERE table_name = 'created_together' ORDER BY ordinal_position`)
    t.same(columns.rows, [
      { column_name: 'key', data_type: 'text', is_nullable: 'NO', collation_name: 'C' },
      { column_name: 'value', data_type: 'text', is_nullable: 'NO', collation_name: null },
      { column_name: 'expires_at', data_type: 'timestamp with time zone', is_nullable: 'YES', collation_name: null }
    ])
    const indexes = await pool.query("SELECT indexname FROM pg_indexes WHERE tablename = 'created_together' ORDER BY indexname")
    t.same(indexes.rows.map((row) => row.indexname), ['created_together_expires_at', 'created_together_pkey'])

    // A team that ran the README's SQL in its own migration: createTable then finds it all there.
    await pool.query('CREATE SCHEMA app')
    await pool.query(createTableSql('app.migrated'))
    const migrated = postgresBackend(pool, { table: 'app.migrated' })
    await migrated.createTable()
    await migrated.set('k', 'v')
    t.equal(await migrated.get('k'), 'v')
    t.equal((await pool.query('SELECT value FROM app.migrated')).rows[0].value, 'v', 'schema-qualified names work')
  })

  t.test('a missing table is a clear error that names the fix, and does not mark the database down', async (t) => {
    const backend = postgresBackend(pool, { table: 'never_created' })
    const error = await backend.get('k').then(() => undefined, (err: unknown) => err)
    t.type(error, PostgresBackendError)
    t.match(error, { reason: 'query-failed', sqlState: '42P01', code: 'LR_POSTGRES_UNAVAILABLE', message: /createTable\(\)/ })
    t.match(await backend.get('k').catch((err: unknown) => err), { reason: 'query-failed' }, 'the next call asks the database again')

    // One connection only: a failed createTable must hand it back out of its transaction.
    const single = server.pool({ max: 1 })
    const noSchema = postgresBackend(single, { table: 'no_such_schema.records' })
    await t.rejects(noSchema.createTable(), { name: 'PostgresBackendError', reason: 'query-failed', sqlState: '3F000' })
    const { backend: usable } = await fresh({}, single)
    await usable.set('k', 'v')
    t.equal(await usable.get('k'), 'v', 'the connection is usable again')
  })

  t.test('get, set and delete; the primary key is the record key and the value is stored as given', async (t) => {
    const { backend, table } = await fresh()
    t.equal(await backend.get('a'), undefined)
    await backend.set('a', 'one')
    t.equal(await backend.get('a'), 'one')
    t.same(await rows(table), [{ key: 'a', value: 'one', ttl: null }])
    await backend.set('a', 'two')
    t.equal(await backend.get('a'), 'two')
    await backend.delete('a')
    t.equal(await backend.get('a'), undefined)
    await backend.delete('never-there')
    await backend.set('quote\'s; DROP TABLE x', 'v\'"\\')
    t.equal(await backend.get('quote\'s; DROP TABLE x'), 'v\'"\\', 'keys and values are parameters, never SQL')
    t.equal(await postgresBackend(pool, { table: 'created_together' }).get('a'), undefined, 'another table is another namespace')
  })

  t.test('TTLs become expires_at; every read honours it, before any sweep removes the row', async (t) => {
    const { backend, table } = await fresh()
    await backend.set('short', 'x', 150.2)
    const [short] = await rows(table)
    t.ok(short!.ttl! > 100 && short!.ttl! <= 151, `expires_at is about 150 ms away (${short!.ttl})`)
    await backend.set('forever', 'y')
    await backend.set('forever', 'y2', 60_000)
    t.ok((await rows(table)).find((row) => row.key === 'forever')!.ttl! > 59_000, 'overwriting sets the new TTL')
    await backend.set('forever', 'y3')
    t.equal((await rows(table)).find((row) => row.key === 'forever')!.ttl, null, 'and a write without TTL removes it')
    await sleep(200)
    t.ok((await rows(table)).some((row) => row.key === 'short'), 'the expired row is still in the table')
    t.equal(await backend.get('short'), undefined, 'but reads as absent')
    t.equal(await backend.compareAndSet('short', 'x', 'z'), false, 'cannot be compared against')
    t.equal(await backend.compareAndDelete('short', 'x'), false)
    t.same(await collect(backend.scan('')), ['forever'], 'scan skips it')
    t.equal(await backend.compareAndSet('short', undefined, 'new'), true, '"only when absent" writes over it')
    t.equal(await backend.get('short'), 'new')
    for (const ttl of [0, -1, NaN, Infinity]) {
      await t.rejects(backend.set('k', 'v', ttl), RangeError)
      await t.rejects(backend.compareAndSet('k', undefined, 'v', ttl), RangeError)
      await t.rejects(backend.tryLock('l', ttl), RangeError)
    }
    await t.rejects(backend.tryLock('l', undefined as unknown as number), RangeError, 'a lock always expires')
    t.equal(await backend.get('k'), undefined)
  })

  t.test('expired rows are swept in bounded batches: by sweepExpired(), and by the first write of a process', async (t) => {
    const { table } = await fresh()
    await pool.query(`INSERT INTO ${table} (key, value, expires_at) SELECT 'old:' || i, 'v', now() - interval '1 second' FROM generate_series(1, 30) i`)
    await pool.query(`INSERT INTO ${table} (key, value, expires_at) VALUES ('live', 'v', now() + interval '1 hour'), ('forever', 'v', NULL)`)
    const first = postgresBackend(pool, { table })
    t.equal(await first.sweepExpired(10), 10, 'at most the limit')
    t.equal(await first.sweepExpired(), 20, 'then the rest')
    t.equal(await first.sweepExpired(), 0)
    t.same((await rows(table)).map((row) => row.key), ['forever', 'live'], 'live rows are untouched')
    await t.rejects(first.sweepExpired(0), RangeError)
    await t.rejects(first.sweepExpired(1.5), RangeError)

    await pool.query(`INSERT INTO ${table} (key, value, expires_at) SELECT 'old:' || i, 'v', now() - interval '1 second' FROM generate_series(1, 5) i`)
    const restarted = postgresBackend(pool, { table })
    await restarted.set('w', 'v')
    const deadline = Date.now() + 5000
    while ((await rows(table)).length !== 3) {
      if (Date.now() > deadline) t.fail('the write did not sweep')
      await sleep(20)
    }
    await restarted.set('w2', 'v')
    await pool.query(`INSERT INTO ${table} (key, value, expires_at) VALUES ('old:again', 'v', now() - interval '1 second')`)
    await restarted.set('w3', 'v')
    await sleep(100)
    t.ok((await rows(table)).some((row) => row.key === 'old:again'), 'later writes within the interval do not sweep again')
  })

  t.test('compareAndSet writes only over the expected value, or only when absent', async (t) => {
    const { backend, table } = await fresh()
    t.equal(await backend.compareAndSet('k', undefined, 'v1'), true, 'absent: created')
    t.equal(await backend.compareAndSet('k', undefined, 'other'), false, 'present: "only when absent" refuses')
    t.equal(await backend.compareAndSet('k', 'wrong', 'other'), false)
    t.equal(await backend.compareAndSet('k', '', 'other'), false, 'the empty string is a value, not "absent"')
    t.equal(await backend.get('k'), 'v1')
    t.equal(await backend.compareAndSet('k', 'v1', 'v2', 60_000), true)
    t.ok((await rows(table))[0]!.ttl! > 59_000, 'the TTL is set with the write')
    t.equal(await backend.compareAndSet('k', 'v2', 'v3'), true)
    t.equal((await rows(table))[0]!.ttl, null, 'no TTL: persistent')
    t.equal(await backend.compareAndSet('gone', 'v1', 'x'), false, 'an expected value on an absent key refuses')
    t.equal(await backend.get('gone'), undefined)
    await backend.set('empty', '')
    t.equal(await backend.compareAndSet('empty', '', 'filled'), true, 'an empty value can be compared')
  })

  t.test('compareAndSet is atomic across pooled connections: of 50 concurrent writers expecting the same value, one wins', async (t) => {
    const { backend } = await fresh()
    await backend.set('k', 'start')
    const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => await backend.compareAndSet('k', 'start', `w${i}`)))
    t.equal(results.filter(Boolean).length, 1)
    t.equal(await backend.get('k'), `w${results.indexOf(true)}`)
    const creators = await Promise.all(Array.from({ length: 50 }, async (_, i) => await backend.compareAndSet('new', undefined, `c${i}`)))
    t.equal(creators.filter(Boolean).length, 1, 'and of 50 concurrent creators, one')
  })

  t.test('compareAndDelete deletes only the expected value', async (t) => {
    const { backend } = await fresh()
    await backend.set('k', 'v1')
    t.equal(await backend.compareAndDelete('k', 'v0'), false)
    t.equal(await backend.get('k'), 'v1')
    t.equal(await backend.compareAndDelete('k', 'v1'), true)
    t.equal(await backend.get('k'), undefined)
    t.equal(await backend.compareAndDelete('k', 'v1'), false, 'absent: nothing to delete')
  })

  t.test('locks are lease rows: exclusive until released or expired, whichever pooled connection asks', async (t) => {
    // Two connections at most: take, extend and release land on different ones.
    const small = server.pool({ max: 2 })
    const { backend, table } = await fresh({}, small)
    const first = await backend.tryLock('refresh:u1', 5000)
    t.ok(first)
    t.match(first?.owner, /^[A-Za-z0-9_-]{22}$/, '128 random bits')
    const [row] = await rows(table)
    t.same({ key: row!.key, value: row!.value }, { key: 'lock:refresh:u1', value: first?.owner }, 'one row: lock:<name>, owner')
    t.ok(row!.ttl! > 4000 && row!.ttl! <= 5000, 'with a lease')
    t.equal(await backend.tryLock('refresh:u1', 5000), undefined, 'held: a second taker gets nothing')
    t.ok(await backend.tryLock('refresh:u2', 5000), 'another name is another lock')
    const concurrent = await Promise.all(Array.from({ length: 20 }, async () => await backend.tryLock('race', 5000)))
    t.equal(concurrent.filter(Boolean).length, 1, 'of 20 concurrent takers exactly one wins')
    await first?.release()
    const second = await backend.tryLock('refresh:u1', 5000)
    t.ok(second, 'free again after release')
    t.not(second?.owner, first?.owner)
    const locks = await pool.query('SELECT count(*)::int AS n FROM pg_locks WHERE locktype = \'advisory\'')
    t.equal(locks.rows[0].n, 0, 'no advisory lock is held by any connection')
  })

  t.test('only the owner can extend or release; an expired lease can be taken over', async (t) => {
    const { backend, table } = await fresh()
    const first = await backend.tryLock('l', 100)
    t.equal(await first?.extend(400), true, 'the owner extends')
    t.ok((await rows(table))[0]!.ttl! > 300)
    await sleep(150)
    t.equal(await backend.tryLock('l', 100), undefined, 'the extension kept it held past its first lease')
    await sleep(300)
    t.equal(await first?.extend(1000), false, 'expired: extend reports the lock lost and does not revive it')
    const second = await backend.tryLock('l', 5000)
    t.ok(second, 'taken over after expiry')
    await first?.release()
    t.equal((await rows(table))[0]?.value, second?.owner, "the old owner's release leaves the new owner's lock")
    t.equal(await first?.extend(5000), false, "the old owner's extend does not touch it either")
    t.equal(await backend.tryLock('l', 5000), undefined)
    await second?.release()
    await second?.release()
    t.same(await rows(table), [], 'released (twice is harmless)')
  })

  t.test('scan lists keys under a prefix, taking LIKE wildcards literally, and never lock rows', async (t) => {
    const { backend } = await fresh()
    const keys = ['a%b:1', 'a%b:2', 'axb:3', 'a_c', 'abc', 'a\\d', 'a\\\\d', 'session:x', 'locksmith']
    for (const key of keys) await backend.set(key, 'v')
    const lock = await backend.tryLock('refresh:u1', 5000)
    t.same(await collect(backend.scan('a%b:')), ['a%b:1', 'a%b:2'], '% is not a wildcard')
    t.same(await collect(backend.scan('a_')), ['a_c'], '_ is not a wildcard')
    t.same(await collect(backend.scan('a\\d')), ['a\\d'], 'a backslash is not an escape')
    t.same(await collect(backend.scan('zzz')), [])
    t.same(await collect(backend.scan('')), [...keys].sort(), 'in key order, lock rows left out')
    t.same(await collect(backend.scan('lo')), ['locksmith'])
    t.same(await collect(backend.scan('lock:')), [])
    await t.rejects(backend.set('lock:refresh:u1', 'x'), RangeError, 'record keys cannot pose as locks')
    await t.rejects(backend.get('lock:refresh:u1'), RangeError)
    await t.rejects(backend.delete('lock:refresh:u1'), RangeError)
    await t.rejects(backend.compareAndDelete('lock:refresh:u1', lock?.owner as string), RangeError)
    await t.rejects(backend.get(5 as unknown as string), TypeError)
    await t.rejects(backend.tryLock('', 1000), TypeError)
    await t.rejects(collect(backend.scan(5 as unknown as string)), TypeError)
    t.equal(await backend.tryLock('refresh:u1', 1000), undefined, 'the lock is untouched')
    t.equal(likePrefix('x%_\\y'), 'x\\%\\_\\\\y%')
  })

  t.test('scan pages by key (keyset), so rows deleted or added behind it never make it skip one', async (t) => {
    const { backend, table } = await fresh()
    await pool.query(`INSERT INTO ${table} (key, value) SELECT 'tokens:' || lpad(i::text, 5, '0'), 'v' FROM generate_series(1, 1300) i`)
    await pool.query(`INSERT INTO ${table} (key, value) SELECT 'session:' || i, 'v' FROM generate_series(1, 50) i`)
    const seen: string[] = []
    for await (const key of backend.scan('tokens:')) {
      seen.push(key)
      // What reencryptAll-style callers do: change what was already listed. OFFSET paging would
      // then skip a page's worth of keys; keyset paging cannot.
      if (seen.length % 100 === 0) await pool.query(`DELETE FROM ${table} WHERE key <= $1`, [key])
    }
    t.equal(seen.length, 1300)
    t.equal(new Set(seen).size, 1300, 'each key once, over three pages')
    for (const statement of Object.values(statementsFor(table))) t.notMatch(statement.text, /OFFSET/i)
  })

  t.test('options and pools are checked up front', async (t) => {
    t.throws(() => postgresBackend({} as pg.Pool), { code: 'LR_INVALID_OPTION', option: 'pool' })
    t.throws(() => postgresBackend(null as unknown as pg.Pool), { code: 'LR_INVALID_OPTION', option: 'pool' })
    const client = new pg.Client({ port: server.port })
    t.throws(() => postgresBackend(client as unknown as pg.Pool), { option: 'pool', message: /not a single Client/ })
    const silent = new pg.Pool({ port: server.port })
    t.teardown(async () => { await silent.end() })
    t.throws(() => postgresBackend(silent), { option: 'pool', message: /'error' listener/ })
    for (const table of ['Upper', 'x; DROP TABLE y', 'a.b.c', '', '1abc', 'a'.repeat(53), 'a-b', 5]) {
      t.throws(() => postgresBackend(pool, { table: table as string }), { code: 'LR_INVALID_OPTION', option: 'table' }, `table ${String(table)}`)
    }
    t.throws(() => createTableSql('bad name'), { code: 'LR_INVALID_OPTION', option: 'table' })
    for (const operationTimeoutMs of [0, -5, NaN, Infinity]) {
      t.throws(() => postgresBackend(pool, { operationTimeoutMs }), { code: 'LR_INVALID_OPTION', option: 'operationTimeoutMs' })
    }
    t.throws(() => postgresBackend(pool, { localCacheMs: -1 }), { code: 'LR_INVALID_OPTION', option: 'localCacheMs' })
    t.equal(postgresBackend(pool, { localCacheMs: 0 }).getSync, undefined, 'localCacheMs 0: no synchronous answers at all')
    t.equal(postgresBackend(pool).table, 'lightroom_ims_records')
  })

  t.test('a database error is reported without the values of the statement', async (t) => {
    const { backend } = await fresh()
    // PostgreSQL text cannot hold a NUL byte: the server refuses the parameter.
    const error = await backend.set('k', 'secret-value\u0000').then(() => undefined, (err: unknown) => err as PostgresBackendError)
    t.type(error, PostgresBackendError)
    t.match(error, { reason: 'query-failed', name: 'PostgresBackendError' })
    t.notOk(JSON.stringify(error).includes('secret') || String(error?.message).includes('secret'), 'no value in the error')
    t.equal(error?.cause, undefined, "pg's error (whose detail can quote a row) is not attached")
    t.equal(await backend.get('k'), undefined)
  })

  t.test('while PostgreSQL is stopped every call fails at once; after a restart everything is back, locks too', async (t) => {
    const { backend } = await fresh({ localCacheMs: 0 })
    await backend.set('kept', 'value', 3_600_000)
    const lock = await backend.tryLock('held', 60_000)
    await server.stop()
    const calls = everyOperation(backend, lock)
    for (const [name, run] of calls) {
      const started = performance.now()
      const error = await run().then(() => undefined, (err: unknown) => err)
      const elapsed = performance.now() - started
      t.match(error, { name: 'PostgresBackendError', reason: /^(connection-failed|unavailable)$/ }, `${name} rejects`)
      t.ok(elapsed < 250, `${name} rejects at once (${elapsed.toFixed(1)} ms)`)
    }
    await server.start()
    await untilAnswering(backend)
    t.equal(await backend.get('kept'), 'value', 'nothing lost: the row is on disk')
    t.equal(await lock?.extend(60_000), true, 'the lock survived the restart too')
    await lock?.release()
  })

  t.test('a hung PostgreSQL: the first call times out, the next ones reject at once, then it recovers by itself', async (t) => {
    // Two connections: of 10 calls, 2 reach the database and 8 wait for the pool.
    const small = server.pool({ max: 2 })
    const { backend } = await fresh({ operationTimeoutMs: 300, localCacheMs: 0 }, small)
    await Promise.all([backend.set('kept', 'value'), backend.set('other', 'value')])
    server.pause()
    t.teardown(() => { server.resume() })
    let started = performance.now()
    const hung = await Promise.all(Array.from({ length: 10 }, async () => await backend.get('kept').then(() => undefined, (err: unknown) => err as PostgresBackendError)))
    let elapsed = performance.now() - started
    t.same(hung.map((error) => error?.reason).sort(), [...Array(2).fill('timeout'), ...Array(8).fill('unavailable')].sort(),
      'the two queries sent time out; the calls queued behind them are turned away at that moment')
    t.ok(elapsed >= 290 && elapsed < 1500, `all after about operationTimeoutMs, none after the queue's 5 s (${elapsed.toFixed(0)} ms)`)
    started = performance.now()
    const fast = await Promise.all(Array.from({ length: 20 }, async () => await backend.tryLock('l', 1000).then(() => undefined, (err: unknown) => err)))
    elapsed = performance.now() - started
    t.ok(fast.every((error) => error instanceof PostgresBackendError), 'still down: rejected')
    t.ok(fast.filter((error) => (error as PostgresBackendError).reason === 'unavailable').length >= 19, 'at once, but for at most one probe')
    server.resume()
    await untilAnswering(backend)
    t.equal(await backend.get('kept'), 'value', 'recovered by itself; nothing lost')
  })

  t.test('a burst bigger than the pool queues past operationTimeoutMs, bounded, and never marks the database down', async (t) => {
    const single = server.pool({ max: 1 })
    const { backend } = await fresh({ operationTimeoutMs: 200 }, single)
    const held = await single.connect()
    const queued = backend.get('k')
    await sleep(400)
    held.release()
    t.equal(await queued, undefined, 'served once the connection was free, twice operationTimeoutMs later')
    const stillHeld = await single.connect()
    const started = performance.now()
    const error = await backend.get('k').then(() => undefined, (err: unknown) => err)
    const waited = performance.now() - started
    t.match(error, { name: 'PostgresBackendError', reason: 'busy' }, 'a pool busy for too long: rejected')
    t.ok(waited >= 4900 && waited < 8000, `after 5 × operationTimeoutMs, at least 5 s (${waited.toFixed(0)} ms)`)
    stillHeld.release()
    t.equal(await backend.get('k'), undefined, 'the very next call asks the database: no fast-fail window')
  })

  t.test('when the pool is busy, lock operations and writes go before queued reads', async (t) => {
    const order: string[] = []
    const slots = gate(1)
    slots.enter(false, () => order.push('first'))
    slots.enter(false, () => order.push('read 1'))
    const withdrawn = slots.enter(false, () => order.push('withdrawn'))
    slots.enter(true, () => order.push('extend lock'))
    slots.enter(false, () => order.push('read 2'))
    withdrawn()
    for (let i = 0; i < 4; i++) slots.leave()
    t.same(order, ['first', 'extend lock', 'read 1', 'read 2'], 'urgent first, then in arrival order; a withdrawn caller is skipped')

    // The same over a real pool of one connection: a lock taken behind 30 reads is served first.
    const { backend } = await fresh({}, server.pool({ max: 1 }))
    const done: string[] = []
    const reads = Array.from({ length: 30 }, async (_, i) => { await backend.get(`k${i}`); done.push('read') })
    const lock = backend.tryLock('refresh:u', 5000).then((taken) => { done.push('lock'); return taken })
    await Promise.all([...reads, lock])
    t.ok(done.indexOf('lock') <= 1, `the lock came at most behind the read already running (position ${done.indexOf('lock')})`)
  })

  t.test('the plugin over PostgreSQL: a stopped database is a fast 503 LR_STORE_UNAVAILABLE, then 200 with the same session', async (t) => {
    const { backend } = await fresh({ localCacheMs: 0 })
    const { h, get } = await signedInOver(t, backend, { httpTimeoutMs: 2000 })
    const before = await get()
    t.equal(before.status, 200)
    await server.stop()
    const started = performance.now()
    const during = await get()
    t.equal(during.status, 503)
    t.equal(during.code, 'LR_STORE_UNAVAILABLE', 'the session read failing is a 503, not a 500')
    t.ok(performance.now() - started < 250, 'answered at once')
    await t.rejects(h.app.lightroom.tokenFor(h.ims.users[0]!.sub), { code: 'LR_STORE_UNAVAILABLE', statusCode: 503 })
    await server.start()
    await untilAnswering(backend)
    const after = await get()
    t.equal(after.status, 200, 'the same cookie works after the restart: the session and tokens were durable')
    t.equal(after.token, before.token)
  })

  t.test('the local cache answers the fast path for localCacheMs, then the database is asked again', async (t) => {
    const { backend, table } = await fresh({ localCacheMs: 300 })
    t.equal(backend.getSync!('absent'), undefined)
    await backend.set('k', 'v1')
    t.equal(backend.getSync!('k'), undefined, 'a write does not fill the cache: only reads do')
    t.equal(await backend.get('k'), 'v1')
    t.equal(backend.getSync!('k'), 'v1', 'read recently: answered locally')
    await pool.query(`UPDATE ${table} SET value = 'v2'`)
    t.equal(backend.getSync!('k'), 'v1', 'another process wrote: still the local answer, for at most localCacheMs')
    t.equal(await backend.get('k'), 'v2', 'get always asks the database')
    await sleep(320)
    t.equal(backend.getSync!('k'), undefined, 'older than localCacheMs: no local answer')
    await backend.get('k')
    await backend.delete('k')
    t.equal(backend.getSync!('k'), undefined, 'a local write or delete drops the local answer at once')

    const store = encryptedStore(backend, { keys: [KEY_A] })
    await store.set('session:x', { userId: 'u', createdAt: 1 })
    const inflight = store.get('session:x')
    await store.delete('session:x')
    await inflight
    t.equal(store.peek('session:x'), undefined, 'a read in flight across a local delete does not put the record back')
  })

  t.test('key rotation for the fleet: reencryptAll moves every row to the new key and keeps its expiry', async (t) => {
    const { backend, table } = await fresh()
    const users = [{ sub: 'u1@AdobeID', email: 'u1@example.com' }, { sub: 'u2@AdobeID', email: 'u2@example.com' }]
    const before = await harness({ backend, ims: { users } })
    t.teardown(before.close)
    const cookies: string[] = []
    for (const { sub } of users) {
      before.ims.signInAs(sub)
      const browser = before.browser()
      await signIn(browser)
      cookies.push(browser.cookieHeader())
    }
    const raw = await rawRecords(backend)
    t.equal(raw.size, 4, 'two token records and two sessions')
    t.ok([...raw.values()].every((value) => value.startsWith('v1.a.')))
    await before.app.close()

    const after = await harness({ backend, sharedIms: before.ims, plugin: { cookieSecret: COOKIE_SECRET, store: encryptedStore(backend, { keys: [KEY_B, KEY_A] }) } })
    t.teardown(after.close)
    t.same(await after.app.lightroom.reencryptAll(), { scanned: 4, reencrypted: 4, failed: 0, completed: true, aborted: false })
    const rotated = await rawRecords(backend)
    t.same([...rotated.keys()].sort(), [...raw.keys()].sort(), 'the same records')
    t.ok([...rotated.values()].every((value) => value.startsWith('v1.b.')), 'every row names key B')
    const tokenRow = (await rows(table)).find((row) => row.key === tokenKey('u1@AdobeID'))
    t.ok(tokenRow!.ttl! > 13 * 86_400_000, `the records keep their expiry (${tokenRow!.ttl} ms left)`)
    t.same(await after.app.lightroom.reencryptAll(), { scanned: 4, reencrypted: 0, failed: 0, completed: true, aborted: false }, 'a second run has nothing to do')
    for (const cookie of cookies) {
      t.equal((await after.app.inject({ url: '/token', headers: { cookie } })).statusCode, 200, 'sessions survive the rotation')
    }
  })
}
