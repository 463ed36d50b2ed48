/**
 * A private redis-server for a test file: a free loopback port, no automatic
 * persistence, and stop/start on the same port to play an outage.
 *
 * Without redis-server on the PATH (or in $REDIS_SERVER), CI fails: a skipped
 * Redis suite would let multi-instance bugs through unnoticed. Locally the
 * file is skipped with a message saying what to install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './backend-calls.js'
import { unavailable } from './system-dependency.js'

export interface RedisServer {
  readonly port: number
  /** redis://127.0.0.1:PORT */
  readonly url: string
  readonly running: boolean
  /** Starts it again on the same port, loading what stop() saved. */
  start (): Promise<void>
  /**
   * SHUTDOWN SAVE: the data goes to this server's own temporary directory and
   * comes back on start(), as with a production Redis that persists. Only
   * this explicit save writes anything; `--save ''` turns off the periodic ones.
   */
  stop (): Promise<void>
  restart (): Promise<void>
  /** SIGSTOP: the port still accepts connections but nothing is answered (a hung server). */
  pause (): void
  resume (): void
  /** Kills it (no save) and removes its directory. Safe to call twice. */
  close (): Promise<void>
}

const BINARY = process.env.REDIS_SERVER ?? 'redis-server'
const START_TIMEOUT_MS = 10_000

export function redisServerInstalled (): boolean {
  const probe = spawnSync(BINARY, ['--version'], { stdio: 'ignore' })
  return probe.error === undefined && probe.status === 0
}

/**
 * For the top of a test file: undefined when redis-server is there, else why
 * the file skips. In CI it throws instead, which fails the file.
 */
export function redisUnavailableReason (): string | undefined {
  if (redisServerInstalled()) return undefined
  return unavailable(`${BINARY} not found`, 'install it (apt-get install redis-server) or set REDIS_SERVER to its path', 'the Redis tests')
}

export async function startRedisServer (): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'lr-redis-'))
  let port = 0
  let child: ChildProcess | undefined
  let output = ''
  let closed = false

  // A test process that dies without its teardown must not leave Redis running.
  const killOnExit = (): void => { child?.kill('SIGKILL') }
  process.once('exit', killOnExit)

  async function launch (): Promise<void> {
    output = ''
    const proc = spawn(BINARY, [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--dbfilename', 'dump.rdb',
      '--daemonize', 'no',
      '--loglevel', 'warning'
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-4000) }
    proc.stdout?.on('data', keep)
    proc.stderr?.on('data', keep)
    child = proc
    const exited = once(proc, 'exit').then(() => { throw new Error(`redis-server on port ${port} exited at start-up:\n${output}`) })
    // Keep a later exit (a normal stop) from being reported as an unhandled rejection.
    exited.catch(() => {})
    await Promise.race([waitForPong(port, START_TIMEOUT_MS), exited])
  }

  function killNow (): void {
    child?.kill('SIGKILL')
    child = undefined
  }

  async function start (): Promise<void> {
    if (closed) throw new Error('redis-server helper: already closed')
    if (child !== undefined) return
    try {
      await launch()
    } catch (error) {
      killNow()
      throw error
    }
  }

  async function stop (): Promise<void> {
    const proc = child
    if (proc === undefined) return
    proc.kill('SIGCONT')
    const exited = once(proc, 'exit')
    try {
      await command(port, ['SHUTDOWN', 'SAVE'], 5000)
    } catch {
      // SHUTDOWN answers by closing the connection; any error here is that, or a hung server.
    }
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
    child = undefined
  }

  port = await freePort()
  try {
    await start()
  } catch {
    // Someone took the port between freePort() and redis-server binding it: one more try.
    port = await freePort()
    await start()
  }

  return {
    get port () { return port },
    get url () { return `redis://127.0.0.1:${port}` },
    get running () { return child !== undefined },
    start,
    stop,
    restart: async () => { await stop(); await start() },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') },
    close: async () => {
      if (closed) return
      closed = true
      const proc = child
      if (proc !== undefined) {
        const exited = once(proc, 'exit')
        proc.kill('SIGKILL')
        await exited
        child = undefined
      }
      process.off('exit', killOnExit)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function waitForPong (port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await command(port, ['PING'], 500) === '+PONG') return
    } catch {}
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** One command in RESP over a fresh connection; resolves the first reply line. */
async function command (port: number, args: string[], timeoutMs: number): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.setTimeout(timeoutMs)
  const request = `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`
  try {
    return await new Promise<string>((resolve, reject) => {
      let reply = ''
      socket.once('connect', () => socket.write(request))
      socket.on('data', (chunk) => {
        reply += chunk.toString('utf8')
        const end = reply.indexOf('\r\n')
        if (end !== -1) resolve(reply.slice(0, end))
      })
      socket.once('timeout', () => reject(new Error('timeout')))
      socket.once('error', reject)
      socket.once('close', () => reject(new Error('connection closed')))
    })
  } finally {
    socket.destroy()
  }
}
