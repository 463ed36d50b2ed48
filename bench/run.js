// npm run bench: every case in one run on this machine, as a Markdown table (also bench/results/latest.md).
import autocannon from 'autocannon'
import { spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import { once } from 'node:events'
import { request } from 'undici'

const DURATION = Number(process.env.BENCH_DURATION ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const USERS = Number(process.env.BENCH_USERS ?? 100_000)
const here = new URL('.', import.meta.url).pathname

async function freePort () {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function startRedis () {
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 50; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().includes('PONG')) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') }
}

// A throwaway PostgreSQL like the tests': initdb in a temporary folder, fsync off, and (PostgreSQL
// refuses root) as the postgres system user when this runs as root.
async function startPostgres () {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort((a, b) => b - a) : []
  const bin = [...(process.env.PATH ?? '').split(':'), ...versions.map((v) => `/usr/lib/postgresql/${v}/bin`)]
    .find((dir) => dir && existsSync(`${dir}/initdb`) && existsSync(`${dir}/postgres`))
  if (bin === undefined) return undefined
  const dir = mkdtempSync(`${os.tmpdir()}/lr-bench-pg-`)
  const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim())
  const user = process.getuid?.() === 0 ? { uid: id('-u'), gid: id('-g') } : {}
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid)
  const as = { cwd: dir, ...user, stdio: 'ignore' }
  if (spawnSync(`${bin}/initdb`, ['-D', `${dir}/data`, '-U', 'postgres', '-A', 'trust', '--no-sync', '--locale=C'], as).status !== 0) return undefined
  const port = await freePort()
  const child = spawn(`${bin}/postgres`, ['-D', `${dir}/data`, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off'], as)
  for (let i = 0; i < 100; i++) {
    if (spawnSync(`${bin}/pg_isready`, ['-h', '127.0.0.1', '-p', String(port)]).status === 0) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      child.kill('SIGINT')
      await once(child, 'exit')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function startServer (which, env = {}) {
  const script = which === 'mocks' ? [`${here}lightroom-mocks.js`] : [`${here}server.js`, which]
  const child = spawn(process.execPath, script, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  let buffer = ''
  for await (const chunk of child.stdout) {
    buffer += chunk
    if (buffer.includes('\n')) break
  }
  const info = JSON.parse(buffer.split('\n')[0])
  return {
    ...info,
    stop: async () => {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
}

async function load (server, options = {}) {
  const base = { url: `${server.url}/token`, connections: CONNECTIONS, headers: server.cookie ? { cookie: server.cookie } : {} }
  await autocannon({ ...base, duration: 2 }) // warm-up: JIT, connection pools
  const result = await autocannon({ ...base, duration: DURATION, ...options })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx and ${result.errors} errors`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 }
}

async function storm () {
  const server = await startServer('memory')
  try {
    await request(`${server.url}/__advance?ms=86400000`, { method: 'POST' }).then((r) => r.body.dump())
    const result = await autocannon({ url: `${server.url}/token`, connections: 1000, amount: 1000, headers: { cookie: server.cookie }, timeout: 30 })
    const counts = await (await request(`${server.url}/__counts`)).body.json()
    return { requests: result.requests.total, ok: result['2xx'], refreshCalls: counts.refresh, p99: result.latency.p99 }
  } finally {
    await server.stop()
  }
}

async function signInRoundTrips (seconds = 5, concurrency = 8) {
  const server = await startServer('memory')
  const origin = server.url
  let done = 0
  let failed = 0
  const deadline = Date.now() + seconds * 1000
  async function one () {
    const login = await request(`${origin}/auth/lightroom/login`)
    await login.body.dump()
    const cookie = [].concat(login.headers['set-cookie']).map((c) => c.split(';')[0]).join('; ')
    const authorize = await request(login.headers.location)
    await authorize.body.dump()
    const callback = new URL(authorize.headers.location)
    const back = await request(`${origin}${callback.pathname}${callback.search}`, { headers: { cookie } })
    await back.body.dump()
    const session = [].concat(back.headers['set-cookie']).map((c) => c.split(';')[0]).filter((c) => c.includes('lr_session=')).join('; ')
    const token = await request(`${origin}/token`, { headers: { cookie: session } })
    await token.body.dump()
    if (token.statusCode !== 200) throw new Error(`token ${token.statusCode}`)
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        try { await one(); done++ } catch { failed++ }
      }
    }))
  } finally {
    await server.stop()
  }
  return { perSecond: done / seconds, failed }
}

/** Rendition streaming through a route ÷ straight from the mock; then walking 10,000 assets. */
async function lightroom () {
  const mocks = await startServer('mocks')
  const app = await startServer('lightroom', { BENCH_DISCOVERY_URL: mocks.discoveryUrl, BENCH_LR_ORIGIN: mocks.lightroomOrigin })
  try {
    const connections = 16
    const run = async (url, headers) => {
      await autocannon({ url, connections, headers, duration: 2 })
      const result = await autocannon({ url, connections, headers, duration: DURATION })
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx and ${result.errors} errors`)
      return { bytesPerSecond: result.throughput.average, rps: result.requests.average }
    }
    const direct = await run(`${mocks.lightroomOrigin}/v2/catalogs/${app.catalogId}/assets/${app.assetId}/renditions/2048`, { 'x-api-key': 'test-client', authorization: `Bearer ${app.token}` })
    const routed = await run(`${app.url}/photo/${app.assetId}`, { cookie: app.cookie })
    const walk = await (await request(`${app.url}/__walk?rounds=3`, { headers: { cookie: app.cookie } })).body.json()
    return { direct, routed, walk }
  } finally {
    await app.stop()
    await mocks.stop()
  }
}

function memory () {
  const out = spawnSync(process.execPath, ['--expose-gc', `${here}memory.js`, String(USERS)], { encoding: 'utf8' })
  if (out.status !== 0) throw new Error(out.stderr)
  return JSON.parse(out.stdout.trim())
}

if (process.env.BENCH_ONLY === 'lightroom') {
  // A quick look at the Lightroom rows alone (not what the README reports).
  console.log(JSON.stringify(await lightroom(), null, 2))
  process.exit(0)
}

const rows = []
const redis = await startRedis()
const postgres = await startPostgres()
try {
  const cases = [
    ['bare Fastify route (ceiling)', 'bare'],
    ['lightroomToken(), memory store, fresh token', 'memory'],
    ['lightroomToken(), Redis store, fresh token', 'redis'],
    ['the same, Redis with localCacheMs: 0', 'redis-strict'],
    ['lightroomToken(), PostgreSQL store, fresh token', 'postgres'],
    ['the same, PostgreSQL with localCacheMs: 0', 'postgres-strict'],
    ['hand-rolled: @fastify/secure-session cookie', 'secure-session']
  ]
  for (const [label, which] of cases) {
    if (which.startsWith('redis') && redis === undefined) { rows.push({ label, skipped: 'redis-server not installed' }); continue }
    if (which.startsWith('postgres') && postgres === undefined) { rows.push({ label, skipped: 'PostgreSQL not installed' }); continue }
    const server = await startServer(which, { ...(redis ? { BENCH_REDIS_URL: redis.url } : {}), ...(postgres ? { BENCH_POSTGRES_URL: postgres.url } : {}) })
    try {
      rows.push({ label, ...(await load(server)) })
    } finally {
      await server.stop()
    }
  }
} finally {
  redis?.stop()
  await postgres?.stop()
}

const bare = rows[0].rps
const fmt = (n) => (n === undefined ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: 0 }))
const lines = [
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ${CONNECTIONS} connections, ${DURATION} s per case after a 2 s warm-up.`,
  '',
  '| case | requests/s | p50 ms | p99 ms | ratio to bare |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => r.skipped ? `| ${r.label} | skipped: ${r.skipped} | | | |` : `| ${r.label} | ${fmt(r.rps)} | ${r.p50} | ${r.p99} | ${(r.rps / bare).toFixed(2)} |`)
]
const s = await storm()
const rt = await signInRoundTrips()
const m = memory()
const lrb = await lightroom()
const mbps = (n) => (n / 1024 / 1024).toFixed(0)
const pages = lrb.walk.items / 100
lines.push(
  '',
  '| Lightroom case | result |',
  '| --- | ---: |',
  `| 2 MB rendition straight from the mock (16 connections) | ${mbps(lrb.direct.bytesPerSecond)} MB/s (${fmt(lrb.direct.rps)} per second) |`,
  `| the same through a Fastify route (\`rendition()\` streamed) | ${mbps(lrb.routed.bytesPerSecond)} MB/s (${fmt(lrb.routed.rps)} per second) |`,
  `| route ÷ direct | ${(lrb.routed.bytesPerSecond / lrb.direct.bytesPerSecond).toFixed(2)} |`,
  `| walking 10,000 assets 3 times, 100 a page | ${fmt(pages / (lrb.walk.ms / 1000))} pages/s (${fmt(lrb.walk.items / (lrb.walk.ms / 1000))} assets/s) |`,
  `| RSS during the walk: start, peak, end | ${lrb.walk.rss.map((n) => mbps(n)).filter((_, i, all) => i === 0 || i === all.length - 1).join(' → ')} MB, peak ${mbps(Math.max(...lrb.walk.rss))} MB |`
)
lines.push(
  '',
  `Refresh storm: ${s.requests} concurrent requests with an expired token: ${s.ok} answered 200, ${s.refreshCalls} refresh call(s) to IMS, p99 ${s.p99} ms.`,
  `Sign-in round trip (login → IMS authorize → callback → first token) against the mock IMS: ${rt.perSecond.toFixed(0)} per second (${rt.failed} failed).`,
  `Memory, memory backend: ${fmt(m.users)} signed-in users (token record + session record each): RSS +${fmt(m.rssPerUser)} bytes per user, heap +${fmt(m.heapPerUser)} bytes; one user's two records are ${fmt(m.recordBytes)} bytes.`
)
const table = lines.join('\n')
console.log(table)
mkdirSync(`${here}results`, { recursive: true })
writeFileSync(`${here}results/latest.md`, `${table}\n`)
