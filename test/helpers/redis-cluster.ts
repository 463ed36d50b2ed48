/**
 * A private Redis Cluster for a test file: 6 redis-server processes (3 masters, 3 replicas) on free
 * loopback ports in a temporary directory, joined by `redis-cli --cluster create`, and a way to play
 * a master's crash. Like redis-server.ts: skipped locally without the binaries, a failure in CI.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './ports.js'
import { REDIS_CLI, REDIS_SERVER, binaryRuns, launchRedisServer, redisCommand } from './redis-process.js'
import { unavailable } from './system-dependency.js'

const MASTERS = 3
const REPLICAS_PER_MASTER = 1
/** How long a silent node takes to be declared failed: short, so a failover takes seconds. */
const NODE_TIMEOUT_MS = 1000
const SETTLE_TIMEOUT_MS = 20_000

export interface ClusterNode {
  readonly port: number
  readonly running: boolean
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[]
  /** For `new Cluster(startupNodes)`: every node, so the client finds the cluster whichever is down. */
  readonly startupNodes: Array<{ host: string, port: number }>
  /**
   * SIGKILLs the master serving `slot` (no shutdown, no save), once its replica has acknowledged
   * every write so far, so the crash loses nothing in flight. Resolves once it is dead; `promoted`
   * resolves when its replica is master and every live node reports cluster_state:ok again.
   */
  killMaster (slot: number): Promise<{ killedPort: number, promotedPort: number, promoted: Promise<void> }>
  /** Kills every node and removes the directory. Safe to call twice. */
  stop (): Promise<void>
}

export function redisClusterUnavailableReason (): string | undefined {
  if (binaryRuns(REDIS_SERVER) && binaryRuns(REDIS_CLI)) return undefined
  return unavailable(`${REDIS_SERVER} or ${REDIS_CLI} not found`, 'install them (apt-get install redis-server) or set REDIS_SERVER and REDIS_CLI to their paths', 'the Redis Cluster tests')
}

interface Member {
  port: number
  proc: ChildProcess | undefined
}

export async function startRedisCluster (): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'lr-redis-cluster-'))
  const members: Member[] = []
  // A test process that dies without its teardown must not leave the cluster running.
  const killOnExit = (): void => { for (const member of members) member.proc?.kill('SIGKILL') }
  process.once('exit', killOnExit)
  let stopped = false

  async function stop (): Promise<void> {
    if (stopped) return
    stopped = true
    await Promise.all(members.map(async (member) => { await kill(member) }))
    process.off('exit', killOnExit)
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    for (let i = 0; i < MASTERS * (1 + REPLICAS_PER_MASTER); i++) members.push(await launchMember(dir))
    await createCluster(members.map((member) => member.port))
    await settle(members)
  } catch (error) {
    await stop()
    throw error
  }

  return {
    nodes: members.map((member) => ({ get port () { return member.port }, get running () { return member.proc !== undefined } })),
    startupNodes: members.map((member) => ({ host: '127.0.0.1', port: member.port })),
    async killMaster (slot) {
      const live = members.filter((member) => member.proc !== undefined)
      const view = parseNodes(await clusterCommand(live[0]!.port, ['CLUSTER', 'NODES']))
      const master = view.find((node) => node.master && node.slots.some(([from, to]) => slot >= from && slot <= to))
      const replica = view.find((node) => node.replicaOf === master?.id)
      if (master === undefined || replica === undefined) throw new Error(`redis-cluster helper: no master with a replica serves slot ${slot}`)
      await clusterCommand(master.port, ['WAIT', String(REPLICAS_PER_MASTER), '5000'])
      await kill(members.find((member) => member.port === master.port)!)
      const promoted = settle(members, replica.port)
      // Awaited by the caller; until then a rejection must not count as unhandled.
      promoted.catch(() => {})
      return { killedPort: master.port, promotedPort: replica.port, promoted }
    },
    stop
  }
}

async function launchMember (dir: string): Promise<Member> {
  // Someone may take a port between freePort() and redis-server binding it: one more try.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    // The bus port is given explicitly (Redis 7+): the default, port + 10000, may be taken or out of range.
    const busPort = await freePort()
    try {
      const proc = await launchRedisServer(port, dir, [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-port', String(busPort),
        '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
        '--dbfilename', `dump-${port}.rdb`
      ])
      return { port, proc }
    } catch (error) {
      if (attempt === 2) throw error
    }
  }
}

async function kill (member: Member): Promise<void> {
  const proc = member.proc
  if (proc === undefined) return
  member.proc = undefined
  const exited = once(proc, 'exit')
  proc.kill('SIGKILL')
  await exited
}

async function createCluster (ports: number[]): Promise<void> {
  const cli = spawn(REDIS_CLI, [
    '--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`),
    '--cluster-replicas', String(REPLICAS_PER_MASTER), '--cluster-yes'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  cli.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  cli.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const timer = setTimeout(() => cli.kill('SIGKILL'), SETTLE_TIMEOUT_MS)
  const [code] = await once(cli, 'exit') as [number | null]
  clearTimeout(timer)
  if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}):\n${output.slice(-4000)}`)
}

/**
 * Until every live node says cluster_state:ok, every live replica has its master link up, and, when
 * given, `promotedPort` has become a master.
 */
async function settle (members: Member[], promotedPort?: number): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS
  let last = ''
  for (;;) {
    try {
      const live = members.filter((member) => member.proc !== undefined)
      const states = await Promise.all(live.map(async ({ port }) => ({
        port,
        info: await clusterCommand(port, ['CLUSTER', 'INFO']),
        replication: await clusterCommand(port, ['INFO', 'replication'])
      })))
      const unsettled = states.filter(({ port, info, replication }) =>
        !info.includes('cluster_state:ok') ||
        (replication.includes('role:slave') && !replication.includes('master_link_status:up')) ||
        (port === promotedPort && !replication.includes('role:master')))
      if (unsettled.length === 0) return
      last = unsettled.map(({ port }) => port).join(', ')
    } catch (error) {
      last = String(error)
    }
    if (Date.now() > deadline) throw new Error(`redis-cluster helper: not settled within ${SETTLE_TIMEOUT_MS} ms (${last})`)
    await sleep(50)
  }
}

async function clusterCommand (port: number, args: string[]): Promise<string> {
  return await redisCommand(port, args, 2000) ?? ''
}

interface NodeLine { id: string, port: number, master: boolean, replicaOf: string | undefined, slots: Array<[number, number]> }

/** CLUSTER NODES: `<id> <ip:port@bus> <flags> <master id|-> <ping> <pong> <epoch> <link> <slots...>` per line. */
function parseNodes (text: string): NodeLine[] {
  return text.trim().split('\n').map((line) => {
    const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ')
    const flagList = flags!.split(',')
    return {
      id: id!,
      port: Number(address!.split('@')[0]!.split(':').at(-1)),
      master: flagList.includes('master') && !flagList.includes('fail'),
      replicaOf: flagList.includes('slave') ? masterId : undefined,
      // Ranges `0-5460`, single slots `5461`; `[slot->-node]` entries are migrations, not ownership.
      slots: slots.filter((range) => !range.startsWith('[')).map((range): [number, number] => {
        const [from, to] = range.split('-').map(Number)
        return [from!, to ?? from!]
      })
    }
  })
}
