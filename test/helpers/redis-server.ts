/**
 * A private redis-server for a test file: a free loopback port, no automatic
 * persistence, and stop/start on the same port to play an outage.
 *
 * Without redis-server on the PATH (or in $REDIS_SERVER), CI fails: a skipped
 * Redis suite would let multi-instance bugs through unnoticed. Locally the
 * file is skipped with a message saying what to install.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startOnFreePort } from './ports.js'
import { REDIS_SERVER, binaryRuns, launchRedisServer, redisCommand } from './redis-process.js'
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

export function redisServerInstalled (): boolean {
  return binaryRuns(REDIS_SERVER)
}

/**
 * For the top of a test file: undefined when redis-server is there, else why
 * the file skips. In CI it throws instead, which fails the file.
 */
export function redisUnavailableReason (): string | undefined {
  if (redisServerInstalled()) return undefined
  return unavailable(`${REDIS_SERVER} not found`, 'install it (apt-get install redis-server) or set REDIS_SERVER to its path', 'the Redis tests')
}

export async function startRedisServer (): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'lr-redis-'))
  let port = 0
  let child: ChildProcess | undefined
  let closed = false

  // A test process that dies without its teardown must not leave Redis running.
  const killOnExit = (): void => { child?.kill('SIGKILL') }
  process.once('exit', killOnExit)

  async function start (): Promise<void> {
    if (closed) throw new Error('redis-server helper: already closed')
    if (child !== undefined) return
    child = await launchRedisServer(port, dir, ['--dbfilename', 'dump.rdb'])
  }

  async function stop (): Promise<void> {
    const proc = child
    if (proc === undefined) return
    proc.kill('SIGCONT')
    const exited = once(proc, 'exit')
    try {
      await redisCommand(port, ['SHUTDOWN', 'SAVE'], 5000)
    } catch {
      // SHUTDOWN answers by closing the connection; any error here is that, or a hung server.
    }
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
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
