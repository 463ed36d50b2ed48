/**
 * Several app processes sharing one backend (Redis or PostgreSQL) and one IMS: the refresh of a
 * user happens exactly once across all of them, survives a slow IMS, a killed lock holder and a
 * backend outage, and the backend only ever holds ciphertext. test/multi-process*.test.ts run it
 * against each backend.
 *
 * Real processes (child_process.fork of test/fixtures/worker.ts, through tap's TypeScript loader,
 * inherited with execArgv), real HTTP (undici), a real backend server, and the mock IMS in this
 * process. A fake clock cannot be shared across processes, so tokens really expire: the mock issues
 * short-lived access tokens and the workers refresh only once they have expired.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { createMockIms, type MockIms } from '../../lib/testing/index.js'
import type { WorkerBackend, WorkerConfig, WorkerStats } from '../fixtures/worker.js'
import { COOKIE_SECRET } from './setup.js'

const ACCESS_TOKEN_SECONDS = 3
const LOCK_TTL_MS = 300
/** After a failed refresh, how long the whole fleet leaves IMS alone. */
const FAILURE_COOLDOWN_MS = 600
/** How long an instance gives a refresh that another left unstored before spending its token (2 × the lock TTL). */
const UNSTORED_GRACE_MS = 2 * LOCK_TTL_MS
const OPERATION_TIMEOUT_MS = 500
const EMAIL = 'ada@example.com'
const SUB = 'ADA0000000000000000000000@AdobeID'
const APP_ORIGIN = 'https://app.test'

interface Worker {
  name: string
  child: ChildProcess
  origin: string
  output: string[]
  exited: boolean
}

const LOCAL_CACHE_MS = 200

interface Answer { status: number, token?: string, code?: string, ms: number, error?: string }

/** One stored record as the backend server holds it: its key and every other field, as text. */
export interface RawRecord { key: string, fields: string[] }

/** What the suite needs to know about the backend under test. */
export interface Deployment {
  name: string
  /** How the workers reach it. */
  worker: WorkerBackend
  /** Whether the named lock is held right now, asked of the server directly. */
  lockHeld (name: string): Promise<boolean>
  /** Everything stored, locks included, read from the server directly. */
  records (): Promise<RawRecord[]>
  /** Takes the backend away mid-traffic, and gives it back. */
  outage: { describe: string, begin (): Promise<void>, end (): Promise<void>, lastsMs: number }
  /** Upper bound of any one answer while the backend is away (a hung one costs a timeout first). */
  slowestWhileDownMs: number
  /** The backend's operationTimeoutMs in the workers (default 500). */
  operationTimeoutMs?: number
  /** Checks of the processes' own view after the outage. */
  checkStats? (t: Test, stats: WorkerStats[]): void
}

export async function multiProcessSuite (deployment: Deployment): Promise<void> {
  const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
  // No connection limit: every request of a burst is really in flight at the same time.
  const agent = new Agent({ connections: null, keepAliveTimeout: 1000 })
  t.teardown(async () => { await agent.close() })

  const ims: MockIms = await createMockIms({
    accessTokenLifetimeSeconds: ACCESS_TOKEN_SECONDS,
    users: [{ sub: SUB, email: EMAIL, name: 'Ada Lovelace' }]
  })
  t.teardown(ims.close)
  const client = ims.clients[0]!

  const config: WorkerConfig = {
    backend: deployment.worker,
    discoveryUrl: ims.discoveryUrl,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    redirectUri: `${APP_ORIGIN}/auth/lightroom/callback`,
    cookieSecret: COOKIE_SECRET,
    keys: [{ id: 'k1', key: Buffer.alloc(32, 7).toString('hex') }],
    operationTimeoutMs: deployment.operationTimeoutMs ?? OPERATION_TIMEOUT_MS,
    // Shorter than the default second, so the outage below has a stretch no local answer covers.
    localCacheMs: LOCAL_CACHE_MS,
    // Refresh only once expired: the moment every process needs a new token is then the same.
    refreshMarginSeconds: 0,
    httpTimeoutMs: 3000,
    // Far shorter than the slow refresh below: only renewal keeps the lock.
    refreshLock: { lockTtlMs: LOCK_TTL_MS, waitForPeerMs: 5000, pollIntervalMs: 25, failureCooldownMs: FAILURE_COOLDOWN_MS }
  }

  async function startWorker (name: string): Promise<Worker> {
    // fork() passes this process's execArgv on: tap's TypeScript loader runs the worker too.
    const child = fork(new URL('../fixtures/worker.ts', import.meta.url), [JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    const worker: Worker = { name, child, origin: '', output: [], exited: false }
    child.stdout?.on('data', (chunk: Buffer) => worker.output.push(chunk.toString('utf8')))
    child.stderr?.on('data', (chunk: Buffer) => worker.output.push(chunk.toString('utf8')))
    child.once('exit', () => { worker.exited = true })
    const [message] = await Promise.race([
      once(child, 'message') as Promise<[{ type: string, port: number }]>,
      once(child, 'exit').then(() => { throw new Error(`${name} exited at start-up:\n${worker.output.join('')}`) }),
      sleep(60_000).then(() => { throw new Error(`${name} did not start within 60 s:\n${worker.output.join('')}`) })
    ])
    worker.origin = `http://127.0.0.1:${message.port}`
    return worker
  }

  const workers = await Promise.all(['w1', 'w2', 'w3', 'w4'].map(startWorker))
  t.teardown(async () => {
    await Promise.all(workers.map(async (worker) => {
      if (worker.exited) return
      const exited = once(worker.child, 'exit')
      worker.child.kill('SIGKILL')
      await exited
    }))
  })

  async function get (worker: Worker, path: string, cookie?: string): Promise<Answer> {
    const started = performance.now()
    try {
      const response = await request(`${worker.origin}${path}`, { dispatcher: agent, headers: cookie === undefined ? {} : { cookie } })
      const body = await response.body.json() as { token?: string, code?: string }
      return { status: response.statusCode, token: body.token, code: body.code, ms: performance.now() - started }
    } catch (error) {
      return { status: 0, error: (error as Error).message, ms: performance.now() - started }
    }
  }

  async function burst (targets: Worker[], perWorker: number, cookie: string): Promise<Answer[]> {
    return await Promise.all(targets.flatMap((worker) => Array.from({ length: perWorker }, async () => await get(worker, '/token', cookie))))
  }

  /** Sleeps until the token IMS issued last has expired (real time: the workers' clocks are real). */
  async function untilExpired (token: string): Promise<void> {
    const expiresAt = ims.introspect(token).expiresAt
    if (expiresAt === undefined) throw new Error('not a live token')
    await sleep(Math.max(expiresAt - Date.now(), 0) + 50)
  }

  /** The keys of every stored record, locks left out. */
  async function recordKeys (): Promise<string[]> {
    return (await deployment.records()).map((record) => record.key).filter((key) => !key.startsWith('lock:')).sort()
  }

  function summary (answers: Answer[]): string {
    const counts = new Map<string, number>()
    for (const answer of answers) {
      const key = `${answer.status}${answer.code ? ` ${answer.code}` : ''}${answer.error ? ` ${answer.error}` : ''}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    return JSON.stringify(Object.fromEntries(counts))
  }

  // Sign in once, over real HTTP, against the first process: login → IMS authorize → callback.
  const cookie = await signInOverHttp(workers[0]!, agent)
  let current = ''

  t.test(`a session made by one process is accepted by every other (it lives in ${deployment.name})`, async (t) => {
    const answers = await Promise.all(workers.map(async (worker) => await get(worker, '/token', cookie)))
    t.same(answers.map((answer) => answer.status), [200, 200, 200, 200])
    t.equal(new Set(answers.map((answer) => answer.token)).size, 1)
    current = answers[0]!.token!
    t.equal(ims.count('token:refresh_token'), 0)
  })

  t.test('1,000 concurrent requests over 4 processes for an expired token: exactly one refresh, one new token for all', async (t) => {
    await untilExpired(current)
    const before = ims.count('token:refresh_token')
    const started = performance.now()
    const answers = await burst(workers, 250, cookie)
    const elapsed = performance.now() - started
    t.equal(answers.length, 1000)
    t.equal(ims.count('token:refresh_token') - before, 1, 'exactly one refresh call reached IMS')
    t.ok(answers.every((answer) => answer.status === 200), `all 200 (${summary(answers)})`)
    const tokens = new Set(answers.map((answer) => answer.token))
    t.equal(tokens.size, 1, 'the same token for everybody')
    const [token] = tokens
    t.not(token, current, 'a new token')
    t.equal(ims.introspect(token!).active, true)
    t.equal(ims.count('token:refresh_token:error'), 0, 'no refresh token was ever replayed')
    t.comment(`1,000 requests answered in ${elapsed.toFixed(0)} ms`)
    current = token!
  })

  t.test(`a refresh slower than the lock's TTL (${LOCK_TTL_MS} ms) still happens once: the holder renews its lock`, async (t) => {
    await untilExpired(current)
    const before = ims.count('token:refresh_token')
    ims.fail('token', { delayMs: 1000 })
    const pending = burst(workers, 50, cookie)
    await sleep(700)
    t.equal(await deployment.lockHeld(`refresh:${SUB}`), true, `the lock is still held 700 ms into the refresh, past its ${LOCK_TTL_MS} ms TTL`)
    const answers = await pending
    t.equal(ims.count('token:refresh_token') - before, 1, 'exactly one refresh call')
    t.ok(answers.every((answer) => answer.status === 200), `all 200 (${summary(answers)})`)
    const tokens = new Set(answers.map((answer) => answer.token))
    t.equal(tokens.size, 1)
    t.not([...tokens][0], current)
    t.ok(Math.max(...answers.map((answer) => answer.ms)) >= 900, 'everybody waited for the slow refresh')
    t.equal(await deployment.lockHeld(`refresh:${SUB}`), false, 'released afterwards')
    current = [...tokens][0]!
  })

  t.test(`IMS down: the 4 processes together ask it at most once per failure cooldown (${FAILURE_COOLDOWN_MS} ms), and answer at once meanwhile`, async (t) => {
    await untilExpired(current)
    const before = ims.count('token:refresh_token')
    ims.fail('token', { status: 503, retryAfter: 1 }, 100_000)
    const started = performance.now()
    const answers: Answer[] = []
    const clients = workers.flatMap((worker) => Array.from({ length: 3 }, async () => {
      while (performance.now() - started < 3000) {
        answers.push(await get(worker, '/token', cookie))
        await sleep(20)
      }
    }))
    await Promise.all(clients)
    const elapsed = performance.now() - started
    ims.clearFaults()
    const attempts = ims.count('token:refresh_token') - before
    const cooldowns = Math.floor(elapsed / FAILURE_COOLDOWN_MS) + 1
    t.ok(answers.length > 100, `traffic from every process throughout (${answers.length} requests)`)
    t.ok(attempts >= 2, `IMS was tried again once a cooldown had passed (${attempts} attempts)`)
    t.ok(attempts <= cooldowns, `${attempts} IMS attempts in ${elapsed.toFixed(0)} ms: at most one per cooldown for the whole fleet (${cooldowns})`)
    t.ok(answers.every((answer) => answer.status === 503 && answer.code === 'LR_IMS_UNAVAILABLE'), `503 LR_IMS_UNAVAILABLE for the expired token (${summary(answers)})`)
    const times = answers.map((answer) => answer.ms).sort((x, y) => x - y)
    t.ok(times[Math.floor(times.length / 2)]! < 100, `answered at once, not after IMS's retries: the median took ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms`)

    // IMS is back: after the cooldown, one refresh for everybody.
    await sleep(FAILURE_COOLDOWN_MS)
    const recovered = await burst(workers, 10, cookie)
    t.ok(recovered.every((answer) => answer.status === 200), `all 200 once IMS is back (${summary(recovered)})`)
    t.equal(new Set(recovered.map((answer) => answer.token)).size, 1, 'one new token for all')
    t.equal(ims.count('token:refresh_token') - before, attempts + 1, 'exactly one more IMS call')
    current = recovered[0]!.token!
  })

  t.test(`${deployment.name} ${deployment.outage.describe} while a refresh is at IMS: the rotated tokens are stored once it is back, no invalid_grant, signed in everywhere`, async (t) => {
    await untilExpired(current)
    const before = ims.count('token:refresh_token')
    const errorsBefore = ims.count('token:refresh_token:error')
    // The refresh reaches IMS, which answers (rotating the refresh token) only once the store is gone.
    ims.fail('token', { delayMs: 600 })
    const first = get(workers[0]!, '/token', cookie)
    const deadline = Date.now() + 5000
    while (ims.count('token:refresh_token') === before) {
      if (Date.now() > deadline) throw new Error('the refresh never reached IMS')
      await sleep(10)
    }
    await deployment.outage.begin()
    const answer = await first
    t.equal(answer.status, 200, `the process that refreshed answers with the new token (${answer.status} ${answer.code ?? ''})`)
    t.not(answer.token, current)
    t.equal(ims.introspect(answer.token!).active, true)
    // Down for longer than the lock's TTL and the grace: only the kept lock and the mark protect the grant.
    await sleep(LOCK_TTL_MS + UNSTORED_GRACE_MS)
    await deployment.outage.end()
    // Every process, the token expired on all of them: they must find the stored new set, not refresh.
    const recoveredBy = Date.now() + 10_000
    let answers: Answer[] = []
    const reconnecting: Answer[] = []
    for (;;) {
      answers = await burst(workers, 5, cookie)
      if (answers.every((answer) => answer.status === 200) || Date.now() > recoveredBy) break
      reconnecting.push(...answers)
      await sleep(100)
    }
    t.ok(reconnecting.every((answer) => answer.status === 200 || answer.status === 503), `only 200s and 503s while reconnecting, never a sign-out (${summary(reconnecting)})`)
    t.ok(answers.every((answer) => answer.status === 200), `every process serves the user (${summary(answers)})`)
    t.same([...new Set(answers.map((answer) => answer.token))], [answer.token], 'with the token the interrupted refresh got')
    t.equal(ims.count('token:refresh_token:error') - errorsBefore, 0, 'no invalid_grant: the rotated-away refresh token was never spent again')
    t.equal(ims.count('token:refresh_token') - before, 1, 'one refresh in all')
    t.equal(ims.activeRefreshTokens(SUB).length, 1, 'one live grant')
    current = answer.token!
  })

  t.test('a process killed (SIGKILL) while holding the lock: the others take over after the lock TTL and the user stays signed in', async (t) => {
    const victim = workers[3]!
    const survivors = workers.slice(0, 3)
    await untilExpired(current)
    const before = ims.count('token:refresh_token')
    const errorsBefore = ims.count('token:refresh_token:error')
    // The victim's refresh hangs at IMS; once the victim is gone, IMS never processes it (the
    // request was lost on the way), so the stored refresh token is still the valid one.
    ims.fail('token', { delayMs: 1500, dropIfClientGone: true })
    const victimAnswer = get(victim, '/token', cookie)
    const deadline = Date.now() + 5000
    while (ims.count('token:refresh_token') === before) {
      if (Date.now() > deadline) throw new Error('the victim never called IMS')
      await sleep(10)
    }
    t.equal(await deployment.lockHeld(`refresh:${SUB}`), true, 'the victim holds the lock while IMS is slow')
    const exited = once(victim.child, 'exit')
    victim.child.kill('SIGKILL')
    await exited
    t.equal((await victimAnswer).status, 0, 'the victim died without answering')
    const killedAt = performance.now()

    const answers = await burst(survivors, 50, cookie)
    t.ok(answers.every((answer) => answer.status === 200), `all 200 (${summary(answers)})`)
    const tokens = new Set(answers.map((answer) => answer.token))
    t.equal(tokens.size, 1)
    const [token] = tokens
    t.not(token, current)
    t.equal(ims.introspect(token!).active, true)
    const waited = performance.now() - killedAt
    // The victim's mark in the record holds its token back for the grace: its result might be stored yet.
    t.ok(waited < LOCK_TTL_MS + UNSTORED_GRACE_MS + 1000, `the survivors were held up by at most about the lock TTL and the grace (${waited.toFixed(0)} ms)`)
    t.equal(ims.count('token:refresh_token') - before, 2, "the victim's lost call and one survivor's refresh")
    // Let the victim's delayed call run out: IMS drops it, so it neither rotates nor fails anything.
    await sleep(1600 - (performance.now() - killedAt))
    t.equal(ims.count('token:refresh_token:error'), errorsBefore, 'no refresh was rejected')
    t.equal(ims.activeRefreshTokens(SUB).length, 1, 'one live grant')
    const again = await burst(survivors, 1, cookie)
    t.same(again.map((answer) => answer.status), [200, 200, 200], 'still signed in')
    current = token!
  })

  t.test(`${deployment.name} ${deployment.outage.describe} mid-traffic: fast 503s while down, 200s after, nothing lost, no crash`, async (t) => {
    const live = workers.filter((worker) => !worker.exited)
    // Start from a just-refreshed token, so no refresh can be in flight when the backend goes away (a
    // refresh whose result cannot be stored is the one thing an outage could cost: see the report).
    await untilExpired(current)
    const warmup = await get(live[0]!, '/token', cookie)
    t.equal(warmup.status, 200)
    current = warmup.token!
    const keysBefore = await recordKeys()

    const phases: Array<{ at: number, phase: 'up' | 'stopping' | 'down' | 'starting' | 'recovered' }> = [{ at: performance.now(), phase: 'up' }]
    const phaseAt = (time: number): string => [...phases].reverse().find((entry) => entry.at <= time)!.phase
    const log: Array<Answer & { started: number, phase: string, endPhase: string }> = []
    const load = { running: true }
    const clients = live.flatMap((worker) => Array.from({ length: 3 }, async () => {
      while (load.running) {
        const started = performance.now()
        const answer = await get(worker, '/token', cookie)
        log.push({ ...answer, started, phase: phaseAt(started), endPhase: phaseAt(performance.now()) })
        await sleep(10)
      }
    }))

    await sleep(300)
    phases.push({ at: performance.now(), phase: 'stopping' })
    await deployment.outage.begin()
    phases.push({ at: performance.now(), phase: 'down' })
    await sleep(deployment.outage.lastsMs)
    phases.push({ at: performance.now(), phase: 'starting' })
    await deployment.outage.end()
    // Wait until every process is reconnected and answering again.
    const deadline = Date.now() + 5000
    for (;;) {
      const probes = await Promise.all(live.map(async (worker) => await get(worker, '/token', cookie)))
      if (probes.every((probe) => probe.status === 200)) break
      if (Date.now() > deadline) throw new Error(`not recovered: ${summary(probes)}`)
      await sleep(50)
    }
    phases.push({ at: performance.now(), phase: 'recovered' })
    await sleep(300)
    load.running = false
    await Promise.all(clients)

    // For localCacheMs after the backend went away, a process may still answer from what it read just
    // before (a fresh token: 200); after that, only 503s.
    const downAt = phases.find((entry) => entry.phase === 'down')!.at
    const during = log.filter((answer) => answer.phase === 'down' && answer.endPhase === 'down' && answer.started >= downAt + LOCAL_CACHE_MS)
    const after = log.filter((answer) => answer.phase === 'recovered')
    t.ok(during.length > 20, `traffic while down (${during.length} requests)`)
    t.ok(during.every((answer) => answer.status === 503 && answer.code === 'LR_STORE_UNAVAILABLE'), `503 LR_STORE_UNAVAILABLE while down (${summary(during)})`)
    const times = during.map((answer) => answer.ms).sort((x, y) => x - y)
    const slowest = times[times.length - 1]!
    t.ok(slowest < deployment.slowestWhileDownMs, `never a hang: the slowest took ${slowest.toFixed(0)} ms`)
    t.ok(times[Math.floor(times.length / 2)]! < 100, `and most were fast: the median took ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms`)
    t.ok(log.every((answer) => answer.status === 200 || (answer.status === 503 && answer.code === 'LR_STORE_UNAVAILABLE')),
      `only 200 or 503 LR_STORE_UNAVAILABLE at any time, never a 500 or a dropped connection (${summary(log)})`)
    t.ok(after.length > 10 && after.every((answer) => answer.status === 200), `200s after the restart (${summary(after)})`)
    const tokensAfter = new Set(after.map((answer) => answer.token))
    t.ok(tokensAfter.size >= 1 && [...tokensAfter].every((token) => ims.introspect(token!).active || token === current))
    t.same(await recordKeys(), keysBefore, 'no record lost')
    t.ok(live.every((worker) => !worker.exited), 'no process crashed')
    const stats = await Promise.all(live.map(async (worker) => await (await request(`${worker.origin}/stats`, { dispatcher: agent })).body.json() as WorkerStats))
    deployment.checkStats?.(t, stats)
  })

  t.test(`${deployment.name} holds only ciphertext: no token, refresh token, code or email in any key or field`, async (t) => {
    const secrets = [...ims.issuedSecrets(), EMAIL, client.clientSecret]
    t.ok(secrets.length > 5)
    const records = await deployment.records()
    t.ok(records.some(({ key }) => key.startsWith('tokens:')) && records.some(({ key }) => key.startsWith('session:')), `records present (${records.length})`)
    for (const { key, fields } of records) {
      const leaked = secrets.filter((secret) => key.includes(secret) || fields.some((field) => field.includes(secret)))
      t.same(leaked, [], `${key.replace(/:[^:]+$/, ':…')}: nothing in the clear`)
      if (!key.startsWith('lock:')) t.match(fields[0], /^v1\.k1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'an envelope')
    }
    const logs = workers.map((worker) => worker.output.join('')).join('\n')
    t.same(secrets.filter((secret) => logs.includes(secret)), [], 'and no secret in any process log')
  })

  t.test('no process crashed (apart from the one killed on purpose)', async (t) => {
    t.same(workers.map((worker) => worker.exited), [false, false, false, true])
  })
}

/** The browser's part of a sign-in, by hand: only the cookies matter, and each hop is real HTTP. */
async function signInOverHttp (worker: Worker, agent: Agent): Promise<string> {
  const jar = new Map<string, string>()
  const remember = (setCookie: string | string[] | undefined): void => {
    for (const line of typeof setCookie === 'string' ? [setCookie] : setCookie ?? []) {
      const pair = line.split(';')[0] ?? ''
      const eq = pair.indexOf('=')
      jar.set(pair.slice(0, eq), pair.slice(eq + 1))
    }
  }
  const cookieHeader = (): string => [...jar].map(([name, value]) => `${name}=${value}`).join('; ')

  const login = await request(`${worker.origin}/auth/lightroom/login`, { dispatcher: agent })
  await login.body.dump()
  remember(login.headers['set-cookie'])
  const authorize = await request(String(login.headers.location), { dispatcher: agent })
  await authorize.body.dump()
  // IMS sends the browser to the registered redirect URI; this process is where it would land.
  const back = new URL(String(authorize.headers.location))
  if (back.origin !== APP_ORIGIN) throw new Error(`unexpected redirect from IMS: ${back.origin}`)
  const callback = await request(`${worker.origin}${back.pathname}${back.search}`, { dispatcher: agent, headers: { cookie: cookieHeader() } })
  await callback.body.dump()
  if (callback.statusCode !== 303) throw new Error(`sign-in failed: callback answered ${callback.statusCode}`)
  remember(callback.headers['set-cookie'])
  const session = [...jar].find(([name]) => name.endsWith('lr_session'))
  if (session === undefined) throw new Error('no session cookie')
  return `${session[0]}=${session[1]}`
}
