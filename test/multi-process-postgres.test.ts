/**
 * Four app processes sharing one PostgreSQL: test/helpers/multi-process.ts, over postgresBackend.
 * The outage is the harder one for a database client: the server hangs (SIGSTOP to every one of its
 * processes), so connections stay open and nothing answers. The first calls time out, the circuit
 * breaker then answers at once until a probe finds the server back.
 */
import t from 'tap'
import { multiProcessSuite } from './helpers/multi-process.js'
import { startPostgresServer, postgresUnavailableReason } from './helpers/postgres-server.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'

await runUnlessUnavailable(postgresUnavailableReason(), async () => {
  const server = await startPostgresServer()
  t.teardown(server.close)
  const pool = server.pool()
  const TABLE = 'lightroom_ims_records'
  // The default: a burst of 250 requests per process queues on a pool of 10 connections, which on
  // a loaded 2-core machine can take longer than Redis's 500 ms.
  const OPERATION_TIMEOUT_MS = 1000

  await multiProcessSuite({
    name: 'PostgreSQL',
    worker: { kind: 'postgres', url: server.url, table: TABLE },
    async lockHeld (name) {
      const held = await pool.query(`SELECT 1 FROM ${TABLE} WHERE key = $1 AND expires_at > now()`, [`lock:${name}`])
      return held.rowCount === 1
    },
    async records () {
      // Every column, as text: nothing but ciphertext may be in any of them.
      const rows = await pool.query(`SELECT key, value, coalesce(expires_at::text, '') AS expires_at FROM ${TABLE}`)
      return rows.rows.map((row: { key: string, value: string, expires_at: string }) => ({ key: row.key, fields: [row.value, row.expires_at] }))
    },
    outage: {
      describe: 'hung (SIGSTOP) and resumed',
      begin: async () => { server.pause() },
      end: async () => { server.resume() },
      lastsMs: 2500
    },
    operationTimeoutMs: OPERATION_TIMEOUT_MS,
    // The calls in flight when it hangs wait out operationTimeoutMs; so does a probe.
    slowestWhileDownMs: OPERATION_TIMEOUT_MS + 700,
    checkStats (t, stats) {
      t.ok(stats.every((stat) => /^\d+ connections$/.test(stat.connection)), 'every process still has its pool')
    }
  })
})
