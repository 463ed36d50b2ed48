// Store corruption in the PostgreSQL table: test/helpers/store-corruption.ts, with every corrupted
// value written by SQL straight into the row (as a bug elsewhere, or someone with database access,
// would), then the same table scanned: no token or secret in any column, only envelopes.
import t from 'tap'
import { postgresBackend, type PostgresBackend } from '../lib/store/postgres.js'
import { harness, signIn } from './helpers/setup.js'
import { startPostgresServer, postgresUnavailableReason } from './helpers/postgres-server.js'
import { storeCorruptionSuite } from './helpers/store-corruption.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'

await runUnlessUnavailable(postgresUnavailableReason(), async () => {
  const server = await startPostgresServer()
  t.teardown(server.close)
  const pool = server.pool()
  let tables = 0

  storeCorruptionSuite({
    async backend () {
      // No local cache: a raw write must be what the next request reads.
      const backend = postgresBackend(pool, { table: `corrupt_${++tables}`, localCacheMs: 0 })
      await backend.createTable()
      return backend
    },
    async writeRaw (backend, key, value) {
      const updated = await pool.query(`UPDATE ${(backend as PostgresBackend).table} SET value = $2 WHERE key = $1`, [key, value])
      if (updated.rowCount !== 1) throw new Error(`no row ${key}`)
    }
  })

  t.test('the table holds only ciphertext: no token, code, secret or email in any column of any row', async (t) => {
    const backend = postgresBackend(pool, { table: 'plaintext_scan' })
    await backend.createTable()
    const users = [{ sub: 'ALICE00000000000000000AA@AdobeID', email: 'alice@example.com' }, { sub: 'BOB0000000000000000000BB@AdobeID', email: 'bob@example.com' }]
    const h = await harness({ backend, ims: { users } })
    t.teardown(h.close)
    for (const { sub } of users) {
      h.ims.signInAs(sub)
      const browser = h.browser()
      await signIn(browser)
      t.equal((await h.app.inject({ url: '/token', headers: { cookie: browser.cookieHeader() } })).statusCode, 200)
    }
    await h.app.lightroom.tokenFor(users[0]!.sub, { force: true })
    const secrets = [...h.secrets(), ...users.map((user) => user.email)]
    const rows = await pool.query('SELECT key, value, coalesce(expires_at::text, \'\') AS expires_at FROM plaintext_scan')
    t.equal(rows.rowCount, 4, 'two token records and two sessions')
    for (const row of rows.rows as Array<Record<string, string>>) {
      const columns = Object.values(row)
      t.same(secrets.filter((secret) => columns.some((column) => column.includes(secret))), [], `${row.key!.split(':')[0]}: nothing in the clear`)
      t.match(row.value, /^v1\.a\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'the value is an envelope')
    }
  })
})
