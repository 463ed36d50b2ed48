/**
 * One PostgreSQL query per signed-in request, over a real server: getMany is one `= ANY($1)`
 * query that treats expired rows as absent, and a request with `localCacheMs: 0` reads its session
 * and tokens with it.
 */
import type pg from 'pg'
import t from 'tap'
import { postgresBackend } from '../lib/store/postgres.js'
import { startPostgresServer, postgresUnavailableReason } from './helpers/postgres-server.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'
import { harness, signIn } from './helpers/setup.js'

await runUnlessUnavailable(postgresUnavailableReason(), main)

async function main (): Promise<void> {
  const server = await startPostgresServer()
  t.teardown(server.close)

  /** A pool whose every query on `table` is recorded (by its first word), as the server is sent it. */
  function countingPool (table: string): { pool: pg.Pool, statements: string[] } {
    const pool = server.pool()
    const statements: string[] = []
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown
      ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const first = args[0] as string | { text: string }
        const text = typeof first === 'string' ? first : first.text
        if (text.includes(`"${table}"`)) statements.push(text.trim().split(/\s+/).slice(0, 3).join(' '))
        return query(...args)
      }
    })
    return { pool, statements }
  }

  t.test('getMany is one query, answers in order, expired rows absent', async (t) => {
    const backend = postgresBackend(server.pool(), { table: 'many', localCacheMs: 0 })
    await backend.createTable()
    await backend.set('a', '1')
    await backend.set('c', '3')
    await backend.set('gone', 'x', 1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    t.same(await backend.getMany!(['c', 'b', 'a', 'gone']), ['3', undefined, '1', undefined])
    t.same(await backend.getMany!([]), [])
  })

  t.test('a read in flight across a local delete does not put the record back in the local cache', async (t) => {
    const backend = postgresBackend(server.pool(), { table: 'race', localCacheMs: 60_000 })
    await backend.createTable()
    await backend.set('a', '1')
    await backend.set('b', '2')
    t.same(await backend.getMany!(['a', 'b']), ['1', '2'])
    t.equal(backend.getSync!('b'), '2', 'read recently: answered locally')
    const inflight = backend.getMany!(['a', 'b'])
    await backend.delete('a')
    await inflight
    t.equal(backend.getSync!('a'), undefined)
  })

  t.test('with localCacheMs: 0 a signed-in request costs exactly one query', async (t) => {
    const { pool, statements } = countingPool('app')
    const backend = postgresBackend(pool, { table: 'app', localCacheMs: 0 })
    await backend.createTable()
    const h = await harness({ backend })
    t.teardown(h.close)
    const browser = h.browser()
    await signIn(browser)
    const cookie = browser.cookieHeader()
    t.equal((await h.app.inject({ url: '/token', headers: { cookie } })).statusCode, 200)
    statements.length = 0
    t.equal((await h.app.inject({ url: '/token', headers: { cookie } })).statusCode, 200)
    t.same(statements, ['SELECT key, value'], 'the session and the tokens in one query')
  })
}
