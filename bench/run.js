// npm run bench: every case in one run on this machine, as a Markdown table (also bench/results/latest.md).
//
// Throughput cases run in interleaved rounds (bare, memory, Redis, ..., then bare, memory, Redis,
// ... again): on a shared machine one sequential pass cannot tell a slower case from a busier
// minute, so each case's ratio is taken against the bare run of its own round, and the table gives
// the median of those ratios with their min-max.
//   BENCH_ROUNDS (5), BENCH_DURATION (3 s per case per round), BENCH_CONNECTIONS (50),
//   BENCH_USERS (100,000, the memory case), BENCH_LIGHTROOM_DURATION (5 s),
//   BENCH_ONLY=throughput|storms|lightroom|signIn|memory (one report, printed only),
//   BENCH_CASES=bare,redis-strict (throughput cases to run; bare is always one of them)
import autocannon from 'autocannon'
import { spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import { once } from 'node:events'
import { request } from 'undici'
import { runRenewalBench } from './renewal.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const DURATION = Number(process.env.BENCH_DURATION ?? 3)
/** Before each measured run: back in the JIT's and the pools' good graces after the other cases ran. */
const REWARM_SECONDS = 1
const STORM_CONNECTIONS = 1000
const LIGHTROOM_DURATION = Number(process.env.BENCH_LIGHTROOM_DURATION ?? 5)
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

async function load (server, warmSeconds) {
  const base = { url: `${server.url}/token`, connections: CONNECTIONS, headers: server.cookie ? { cookie: server.cookie } : {} }
  await autocannon({ ...base, duration: warmSeconds })
  const result = await autocannon({ ...base, duration: DURATION })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx and ${result.errors} errors`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 }
}

/** 1,000 connections opened at once, one request each: the p99 is when the last of them is answered. */
async function stormOnce (server) {
  const result = await autocannon({ url: `${server.url}/token`, connections: STORM_CONNECTIONS, amount: STORM_CONNECTIONS, headers: server.cookie ? { cookie: server.cookie } : {}, timeout: 30 })
  return { requests: result.requests.total, ok: result['2xx'], p99: result.latency.p99 }
}

/**
 * The refresh storm (every request finds the token expired; one refresh answers them all) next to a
 * bare-route storm of as many connections, interleaved by round like the throughput cases.
 */
async function storms () {
  const bare = await startServer('bare')
  const app = await startServer('memory')
  const rounds = []
  try {
    // Warm-up of both: the first storm of a process also pays for the JIT (and the app's first
    // refresh for its first connection to IMS).
    await stormOnce(bare)
    await request(`${app.url}/__advance?ms=86400000`, { method: 'POST' }).then((r) => r.body.dump())
    await stormOnce(app)
    for (let round = 0; round < ROUNDS; round++) {
      const bareStorm = await stormOnce(bare)
      const before = (await (await request(`${app.url}/__counts`)).body.json()).refresh
      // A day later the token has expired: each storm starts from an expired token.
      await request(`${app.url}/__advance?ms=86400000`, { method: 'POST' }).then((r) => r.body.dump())
      const refreshStorm = await stormOnce(app)
      const after = (await (await request(`${app.url}/__counts`)).body.json()).refresh
      rounds.push({ bare: bareStorm, refresh: refreshStorm, refreshCalls: after - before })
      console.error(`storm round ${round + 1}/${ROUNDS}: bare p99 ${bareStorm.p99} ms, refresh p99 ${refreshStorm.p99} ms`)
    }
  } finally {
    await app.stop()
    await bare.stop()
  }
  return rounds
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
      const result = await autocannon({ url, connections, headers, duration: LIGHTROOM_DURATION })
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

const CASES = [
  ['bare Fastify route (ceiling)', 'bare'],
  ['lightroomToken(), memory store, fresh token', 'memory'],
  ['lightroomToken(), Redis store, fresh token', 'redis'],
  ['the same, Redis with localCacheMs: 0', 'redis-strict'],
  ['the same, ioredis with enableAutoPipelining', 'redis-strict-pipelined'],
  ['lightroomToken(), PostgreSQL store, fresh token', 'postgres'],
  ['the same, PostgreSQL with localCacheMs: 0', 'postgres-strict'],
  ['hand-rolled: @fastify/secure-session cookie', 'secure-session']
]

const selected = process.env.BENCH_CASES?.split(',')
const runCase = (which) => which === 'bare' || selected === undefined || selected.includes(which)

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const spread = (values) => ({ median: median(values), min: Math.min(...values), max: Math.max(...values) })
const fmt = (n) => (n === undefined ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: 0 }))
const ratio = (r) => `${r.median.toFixed(2)} | ${r.min.toFixed(2)}–${r.max.toFixed(2)}`

/** Every case's server started once and kept running; then ROUNDS rounds of each case in turn. */
async function throughput () {
  const redis = await startRedis()
  const postgres = await startPostgres()
  const servers = new Map()
  const skipped = new Map()
  const rounds = []
  try {
    for (const [, which] of CASES) {
      if (!runCase(which)) continue
      if (which.startsWith('redis') && redis === undefined) { skipped.set(which, 'redis-server not installed'); continue }
      if (which.startsWith('postgres') && postgres === undefined) { skipped.set(which, 'PostgreSQL not installed'); continue }
      const server = await startServer(which, { ...(redis ? { BENCH_REDIS_URL: redis.url } : {}), ...(postgres ? { BENCH_POSTGRES_URL: postgres.url } : {}) })
      servers.set(which, server)
      await load(server, 2) // first warm-up: JIT, connection pools
    }
    for (let round = 0; round < ROUNDS; round++) {
      const results = new Map()
      for (const [which, server] of servers) results.set(which, await load(server, REWARM_SECONDS))
      rounds.push(results)
      const bare = results.get('bare').rps
      process.stderr.write(`round ${round + 1}/${ROUNDS}: ${[...results].map(([which, r]) => `${which} ${(r.rps / bare).toFixed(2)}`).join(', ')}\n`)
    }
  } finally {
    for (const server of servers.values()) await server.stop()
    redis?.stop()
    await postgres?.stop()
  }
  const rows = CASES.filter(([, which]) => servers.has(which) || skipped.has(which)).map(([label, which]) => {
    if (skipped.has(which)) return `| ${label} | skipped: ${skipped.get(which)} | | | | |`
    const runs = rounds.map((results) => results.get(which))
    const ratios = rounds.map((results) => results.get(which).rps / results.get('bare').rps)
    return `| ${label} | ${fmt(median(runs.map((r) => r.rps)))} | ${median(runs.map((r) => r.p50))} | ${median(runs.map((r) => r.p99))} | ${ratio(spread(ratios))} |`
  })
  return [
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ${CONNECTIONS} connections; ${ROUNDS} interleaved rounds of ${DURATION} s per case (each after a ${REWARM_SECONDS} s re-warm), every ratio against the bare run of its own round.`,
    '',
    '| case | requests/s (median) | p50 ms | p99 ms | ratio to bare (median) | min–max |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows
  ]
}

async function stormReport () {
  const rounds = await storms()
  const bare = spread(rounds.map((r) => r.bare.p99))
  const refresh = spread(rounds.map((r) => r.refresh.p99))
  const ratios = spread(rounds.map((r) => r.refresh.p99 / r.bare.p99))
  const answered = rounds.every((r) => r.refresh.ok === STORM_CONNECTIONS && r.bare.ok === STORM_CONNECTIONS)
  const calls = rounds.map((r) => r.refreshCalls)
  return [
    `| storm: ${fmt(STORM_CONNECTIONS)} connections opened at once, one request each (${ROUNDS} rounds) | p99 ms (median) | min–max |`,
    '| --- | ---: | ---: |',
    `| bare Fastify route | ${bare.median} | ${bare.min}–${bare.max} |`,
    `| refresh storm: every request finds the token expired (${answered ? 'all answered 200' : 'NOT all answered 200'}; refresh calls to IMS per storm: ${calls.join(', ')}) | ${refresh.median} | ${refresh.min}–${refresh.max} |`,
    `| refresh storm ÷ bare storm, per round (goal ≤ 1.5) | ${ratios.median.toFixed(2)} | ${ratios.min.toFixed(2)}–${ratios.max.toFixed(2)} |`
  ]
}

async function signInReport () {
  const rt = await signInRoundTrips()
  return [`Sign-in round trip (login → IMS authorize → callback → first token) against the mock IMS: ${rt.perSecond.toFixed(0)} per second (${rt.failed} failed).`]
}

async function memoryReport () {
  const m = memory()
  return [`Memory, memory backend: ${fmt(m.users)} signed-in users (token record + session record each): RSS +${fmt(m.rssPerUser)} bytes per user, heap +${fmt(m.heapPerUser)} bytes; one user's two records are ${fmt(m.recordBytes)} bytes.`]
}

async function lightroomReport () {
  const lrb = await lightroom()
  const mbps = (n) => (n / 1024 / 1024).toFixed(0)
  const pages = lrb.walk.items / 100
  return [
    '| Lightroom case | result |',
    '| --- | ---: |',
    `| 2 MB rendition straight from the mock (16 connections) | ${mbps(lrb.direct.bytesPerSecond)} MB/s (${fmt(lrb.direct.rps)} per second) |`,
    `| the same through a Fastify route (\`rendition()\` streamed) | ${mbps(lrb.routed.bytesPerSecond)} MB/s (${fmt(lrb.routed.rps)} per second) |`,
    `| route ÷ direct | ${(lrb.routed.bytesPerSecond / lrb.direct.bytesPerSecond).toFixed(2)} |`,
    `| walking 10,000 assets 3 times, 100 a page | ${fmt(pages / (lrb.walk.ms / 1000))} pages/s (${fmt(lrb.walk.items / (lrb.walk.ms / 1000))} assets/s) |`,
    `| RSS during the walk: start, peak, end | ${lrb.walk.rss.map((n) => mbps(n)).filter((_, i, all) => i === 0 || i === all.length - 1).join(' → ')} MB, peak ${mbps(Math.max(...lrb.walk.rss))} MB |`
  ]
}

async function renewalReport () {
  const r = await runRenewalBench()
  const heap = r.heapStartMB === undefined ? '' : `; live heap after GC ${r.heapStartMB} → ${r.heapEndMB} MB`
  return [
    '| batch job | result |',
    '| --- | ---: |',
    `| \`renewExpiring({ maxPerSecond: ${r.maxPerSecond}, concurrency: ${r.concurrency} })\` over ${fmt(r.users)} users, mock IMS in its own process | ${r.seconds} s for an ideal ${r.idealSeconds} s (${r.withinPercent >= 0 ? '+' : ''}${r.withinPercent}%, goal within 15%); ${fmt(r.imsCalls)} IMS refreshes |`,
    `| RSS during the run: start → peak → end | ${r.rssStartMB} → ${r.rssPeakMB} → ${r.rssEndMB} MB${heap} |`,
    `| CPU seconds: app, mock IMS | ${r.appCpuSeconds}, ${r.imsCpuSeconds} |`
  ]
}

// Each report is an async function returning its Markdown lines, printed in this order after a
// blank line. Cases that are not request throughput (a batch job, a storm, memory) are appended here.
const reports = {
  throughput,
  storms: stormReport,
  lightroom: lightroomReport,
  signIn: signInReport,
  memory: memoryReport,
  renewal: renewalReport
}

const only = process.env.BENCH_ONLY
if (only !== undefined && !(only in reports)) throw new Error(`BENCH_ONLY must be one of ${Object.keys(reports).join(', ')}`)
const sections = []
for (const [name, report] of Object.entries(reports)) {
  if (only === undefined || only === name) sections.push((await report()).join('\n'))
}
const table = sections.join('\n\n')
console.log(table)
// A partial run is a quick look, not the results the README reports.
if (only !== undefined) process.exit(0)
mkdirSync(`${here}results`, { recursive: true })
writeFileSync(`${here}results/latest.md`, `${table}\n`)
