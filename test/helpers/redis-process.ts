/**
 * The pieces every private redis-server of the tests shares: the binaries, launching one on a
 * loopback port (no automatic persistence) and waiting until it answers, and sending one command
 * over a fresh connection without a client library (so the helpers never depend on the code under test).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'
export const REDIS_CLI = process.env.REDIS_CLI ?? 'redis-cli'
const START_TIMEOUT_MS = 10_000

export function binaryRuns (binary: string): boolean {
  const probe = spawnSync(binary, ['--version'], { stdio: 'ignore' })
  return probe.error === undefined && probe.status === 0
}

/** Starts redis-server on `port` with its files in `dir`; resolves once it answers PING. */
export async function launchRedisServer (port: number, dir: string, extraArgs: string[] = []): Promise<ChildProcess> {
  let output = ''
  const proc = spawn(REDIS_SERVER, [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--loglevel', 'warning',
    ...extraArgs
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-4000) }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const exited = once(proc, 'exit').then(() => { throw new Error(`redis-server on port ${port} exited at start-up:\n${output}`) })
  // Keep a later exit (a normal stop) from being reported as an unhandled rejection.
  exited.catch(() => {})
  try {
    await Promise.race([waitForPong(port, START_TIMEOUT_MS), exited])
  } catch (error) {
    proc.kill('SIGKILL')
    throw error
  }
  return proc
}

async function waitForPong (port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await redisCommand(port, ['PING'], 500) === 'PONG') return
    } catch {}
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/**
 * One command in RESP over a fresh connection. Resolves a simple, integer or bulk reply as text
 * (null for a nil bulk); an error reply rejects. Arrays are not needed by the helpers.
 */
export async function redisCommand (port: number, args: string[], timeoutMs: number): Promise<string | null> {
  const socket = connect(port, '127.0.0.1')
  socket.setTimeout(timeoutMs)
  const request = `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`
  try {
    return await new Promise<string | null>((resolve, reject) => {
      let reply = Buffer.alloc(0)
      socket.once('connect', () => socket.write(request))
      socket.on('data', (chunk) => {
        reply = Buffer.concat([reply, chunk])
        const parsed = parseReply(reply)
        if (parsed instanceof Error) reject(parsed)
        else if (parsed !== undefined) resolve(parsed.value)
      })
      socket.once('timeout', () => reject(new Error('timeout')))
      socket.once('error', reject)
      socket.once('close', () => reject(new Error('connection closed')))
    })
  } finally {
    socket.destroy()
  }
}

/** undefined: the reply is not complete yet. */
function parseReply (reply: Buffer): { value: string | null } | Error | undefined {
  const end = reply.indexOf('\r\n')
  if (end === -1) return undefined
  const line = reply.subarray(1, end).toString('utf8')
  switch (reply[0]) {
    case 0x2b: case 0x3a: return { value: line } // + simple string, : integer
    case 0x2d: return new Error(line) // - error
    case 0x24: { // $ bulk string
      const length = Number(line)
      if (length === -1) return { value: null }
      if (reply.length < end + 2 + length + 2) return undefined
      return { value: reply.subarray(end + 2, end + 2 + length).toString('utf8') }
    }
    default: return new Error(`redisCommand: unsupported reply ${JSON.stringify(reply.subarray(0, 20).toString())}`)
  }
}
