/**
 * SCAN over a whole keyspace. A standalone Redis is one cursor walk. A Cluster has no keyspace-wide
 * SCAN (ioredis sends a keyless SCAN to one random node), so every master that owns slots is walked
 * with its own cursor, and a scan that cannot vouch for having seen every slot fails instead of
 * ending as if complete: renewExpiring and reencryptAll must not report "done" over a missed master.
 */
import type { Cluster, Redis } from 'ioredis'
import { RedisBackendError } from './errors.js'
import { SLOT_COUNT } from './key-slot.js'

/** Keys Redis examines per SCAN call: big enough to be quick, small enough not to block Redis. */
const SCAN_COUNT = 500

/** Runs one Redis call with the backend's rules: refused while not connected, bounded in time. */
export type BoundedCall = <T>(operation: string, run: () => Promise<T>) => Promise<T>

export function isCluster (client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true
}

/** Every Redis key matching `pattern` (possibly twice, as SCAN may while Redis resizes its table). */
export async function * scanKeys (client: Redis | Cluster, pattern: string, call: BoundedCall): AsyncGenerator<string> {
  if (!isCluster(client)) {
    yield * walk(client, 'SCAN', pattern, call)
    return
  }
  const owners = await call('SCAN', async () => slotOwners(client))
  const masters = new Map(client.nodes('master').map((node) => [nodeKey(node), node]))
  for (const owner of new Set(owners)) {
    const node = masters.get(owner)
    if (node === undefined) throw new RedisBackendError('not-ready', `Redis SCAN: the master ${owner} is not connected`)
    yield * walk(node, `SCAN on ${owner}`, pattern, call)
  }
  // A slot that moved meanwhile (a failover, a resharding) may have moved from a master not yet
  // walked to one already walked: its keys were then seen by neither walk.
  const now = slotOwners(client)
  if (now.some((owner, slot) => owner !== owners[slot])) {
    throw new RedisBackendError('topology-changed', 'Redis SCAN: the Cluster\'s slots moved to other masters during the scan; run it again')
  }
}

async function * walk (node: Redis, operation: string, pattern: string, call: BoundedCall): AsyncGenerator<string> {
  let cursor = '0'
  do {
    const [next, keys] = await call(operation, async () => {
      // A Cluster's node connection that is down would park the SCAN in its offline queue.
      if (node.status === 'end' || node.status === 'close' || node.status === 'reconnecting') {
        throw new RedisBackendError('not-ready', `Redis ${operation}: the connection is ${node.status}`)
      }
      return await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
    })
    cursor = next
    yield * keys
  } while (cursor !== '0')
}

/** The master of every slot, as ioredis last learned it; fails when a slot has none. */
function slotOwners (client: Cluster): string[] {
  const owners: string[] = []
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const owner = client.slots[slot]?.[0]
    if (owner === undefined) throw new RedisBackendError('not-ready', `Redis SCAN: no master is known for slot ${slot}`)
    owners.push(owner)
  }
  return owners
}

/** ioredis's own name of a node: host:port, as in `client.slots`. */
function nodeKey (node: Redis): string {
  return `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`
}
