/**
 * A private PostgreSQL server for a test file: `initdb` in a temporary folder, a free loopback
 * port, its unix socket in that folder, fsync off (the tests need speed, not durability across a
 * power cut), and stop/start/pause on the same port to play outages.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the `postgres`
 * system user Debian's package creates (or `nobody`), and its folder is handed to that user.
 *
 * Without the server binaries (initdb, postgres on the PATH, in $POSTGRES_BIN or in
 * /usr/lib/postgresql/<version>/bin), CI fails and a local run skips, saying what to install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { startOnFreePort } from './ports.js'
import { unavailable } from './system-dependency.js'

export interface PostgresServer {
  readonly port: number
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication, loopback only). */
  readonly url: string
  readonly running: boolean
  /** Starts it again on the same port, with the same data. */
  start (): Promise<void>
  /** A fast shutdown: connections are closed, the port refuses new ones. The data stays. */
  stop (): Promise<void>
  /** SIGSTOP to the server and every backend process: connections stay open, nothing answers. */
  pause (): void
  resume (): void
  /** A pool on this server with the 'error' listener the backend requires; ended by close(). */
  pool (config?: pg.PoolConfig): pg.Pool
  /** Kills it, ends the pools and removes its folder. Safe to call twice. */
  close (): Promise<void>
}

const START_TIMEOUT_MS = 30_000

function binDir (): string | undefined {
  const candidates = [process.env.POSTGRES_BIN, ...(process.env.PATH ?? '').split(':')]
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)) : []
  candidates.push(...versions.map((version) => `/usr/lib/postgresql/${version}/bin`))
  return candidates.find((dir) => dir !== undefined && dir !== '' && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres')))
}

/**
 * For the top of a test file: undefined when the server binaries are there, else why the file
 * skips. In CI it throws instead, which fails the file.
 */
export function postgresUnavailableReason (): string | undefined {
  if (binDir() !== undefined) return undefined
  return unavailable('PostgreSQL server binaries (initdb, postgres) not found',
    'install them (apt-get install postgresql) or set POSTGRES_BIN to their folder', 'the PostgreSQL tests')
}

/** Who the server runs as: this process, or when that is root, an unprivileged system user. */
function runAs (): { uid: number, gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' })
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' })
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
  }
  throw new Error('running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as')
}

export async function startPostgresServer (): Promise<PostgresServer> {
  const bin = binDir()
  if (bin === undefined) throw new Error('PostgreSQL binaries not found')
  const dir = mkdtempSync(join(tmpdir(), 'lr-postgres-'))
  const data = join(dir, 'data')
  const user = runAs()
  if (user !== undefined) chownSync(dir, user.uid, user.gid)
  const asUser = { cwd: dir, ...(user ?? {}), env: { ...process.env, LC_ALL: 'C', LANG: 'C' } }
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], { ...asUser, encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}${init.stdout}`)

  let port = 0
  let child: ChildProcess | undefined
  let output = ''
  let closed = false
  const pools: pg.Pool[] = []
  const killOnExit = (): void => { child?.kill('SIGKILL') }
  process.once('exit', killOnExit)

  async function launch (): Promise<void> {
    output = ''
    const proc = spawn(join(bin!, 'postgres'), [
      '-D', data, '-p', String(port), '-k', dir,
      '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'max_connections=100', '-c', 'shared_buffers=32MB', '-c', 'log_min_messages=warning'
    ], { ...asUser, stdio: ['ignore', 'pipe', 'pipe'] })
    const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-4000) }
    proc.stdout?.on('data', keep)
    proc.stderr?.on('data', keep)
    child = proc
    const exited = once(proc, 'exit').then(() => { throw new Error(`postgres on port ${port} exited at start-up:\n${output}`) })
    exited.catch(() => {})
    await Promise.race([waitForQuery(port, START_TIMEOUT_MS), exited])
  }

  function killNow (): void {
    child?.kill('SIGKILL')
    child = undefined
  }

  async function start (): Promise<void> {
    if (closed) throw new Error('postgres helper: already closed')
    if (child !== undefined) return
    try {
      await launch()
    } catch (error) {
      killNow()
      throw error
    }
  }

  async function stop (signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
    const proc = child
    if (proc === undefined) return
    signalAll(proc.pid!, 'SIGCONT')
    const exited = once(proc, 'exit')
    proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
    child = undefined
  }

  port = await startOnFreePort(async (free) => {
    port = free
    await start()
  })

  return {
    get port () { return port },
    get url () { return `postgres://postgres@127.0.0.1:${port}/postgres` },
    get running () { return child !== undefined },
    start,
    stop: async () => { await stop() },
    pause: () => { if (child?.pid !== undefined) signalAll(child.pid, 'SIGSTOP') },
    resume: () => { if (child?.pid !== undefined) signalAll(child.pid, 'SIGCONT') },
    pool (config = {}) {
      const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', ...config })
      pool.on('error', () => {})
      pools.push(pool)
      return pool
    },
    close: async () => {
      if (closed) return
      closed = true
      await stop('SIGQUIT')
      // A pool whose server is gone ends at once: its clients are already closed.
      await Promise.all(pools.map(async (pool) => { await pool.end().catch(() => {}) }))
      process.off('exit', killOnExit)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * The postmaster first (so it forks nothing new), then its children: every process of the
 * server. SIGCONT goes the other way round.
 */
function signalAll (postmaster: number, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const children = childrenOf(postmaster)
  const order = signal === 'SIGSTOP' ? [postmaster, ...children] : [...children, postmaster]
  for (const pid of order) {
    try { process.kill(pid, signal) } catch {}
  }
  if (signal === 'SIGSTOP') {
    // One forked between the listing and the postmaster stopping: catch it too.
    for (const pid of childrenOf(postmaster)) if (!children.includes(pid)) process.kill(pid, signal)
  }
}

function childrenOf (parent: number): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === parent) pids.push(Number(entry))
    } catch {}
  }
  return pids
}

async function waitForQuery (port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query('SELECT 1')
      return
    } catch {
      if (Date.now() > deadline) throw new Error(`postgres on port ${port} did not answer within ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    } finally {
      await client.end().catch(() => {})
    }
  }
}
