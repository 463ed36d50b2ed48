/**
 * The StoreBackend contract of the Redis backend, checked on whatever Redis a test file runs
 * (one redis-server, a Cluster): the same checks, so a Cluster behaves exactly as a single Redis.
 * `redisKey` is the test file's own statement of where a key must be stored.
 */
import type { Cluster, Redis } from 'ioredis'
import type { Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { escapeGlob, redisBackend } from '../../lib/store/redis.js'
import type { StoreBackend } from '../../lib/store/types.js'

export interface RedisContractTarget {
  client: Redis | Cluster
  /** The Redis key a record (or `lock:<name>`) key must end up at under `prefix`. */
  redisKey: (prefix: string, key: string) => string
  /** SCRIPT FLUSH wherever the scripts are cached (every master of a Cluster). */
  flushScripts: () => Promise<unknown>
}

export async function collect (iterable: AsyncIterable<string>): Promise<string[]> {
  const keys: string[] = []
  for await (const key of iterable) keys.push(key)
  return keys.sort()
}

export function redisContract (t: Test, { client, redisKey, flushScripts }: RedisContractTarget): void {
  let prefixes = 0
  /** Each test gets its own prefix, so tests never see each other's keys. */
  const fresh = (): { backend: StoreBackend, prefix: string } => {
    const prefix = `contract${++prefixes}:`
    return { backend: redisBackend(client, { prefix }), prefix }
  }

  t.test('get, set and delete, with the backend prefix on every key', async (t) => {
    const { backend, prefix } = fresh()
    t.equal(await backend.get('a'), undefined)
    await backend.set('a', 'one')
    t.equal(await backend.get('a'), 'one')
    t.equal(await client.get(redisKey(prefix, 'a')), 'one', 'stored under the prefix')
    await backend.set('a', 'two')
    t.equal(await backend.get('a'), 'two')
    await backend.delete('a')
    t.equal(await backend.get('a'), undefined)
    await backend.delete('never-there')
    t.equal(await redisBackend(client).get('a'), undefined, 'another prefix is another namespace')
  })

  t.test('TTLs become PX expiries; a write without TTL makes the record persistent', async (t) => {
    const { backend, prefix } = fresh()
    await backend.set('short', 'x', 150.2)
    const pttl = await client.pttl(redisKey(prefix, 'short'))
    t.ok(pttl > 100 && pttl <= 151, `PX applied, rounded up (pttl ${pttl})`)
    await backend.set('forever', 'y')
    t.equal(await client.pttl(redisKey(prefix, 'forever')), -1)
    await backend.set('forever', 'y2', 60_000)
    t.ok(await client.pttl(redisKey(prefix, 'forever')) > 59_000, 'overwriting sets the new TTL')
    await backend.set('forever', 'y3')
    t.equal(await client.pttl(redisKey(prefix, 'forever')), -1, 'and a write without TTL removes it')
    await sleep(200)
    t.equal(await backend.get('short'), undefined, 'expired')
    for (const ttl of [0, -1, NaN, Infinity]) {
      await t.rejects(backend.set('k', 'v', ttl), RangeError)
      await t.rejects(backend.compareAndSet('k', undefined, 'v', ttl), RangeError)
      await t.rejects(backend.tryLock('l', ttl), RangeError)
    }
    await t.rejects(backend.tryLock('l', undefined as unknown as number), RangeError, 'a lock always expires')
    t.equal(await backend.get('k'), undefined)
  })

  t.test('compareAndSet writes only over the expected value, or only when absent', async (t) => {
    const { backend, prefix } = fresh()
    t.equal(await backend.compareAndSet('k', undefined, 'v1'), true, 'absent: created')
    t.equal(await backend.compareAndSet('k', undefined, 'other'), false, 'present: "only when absent" refuses')
    t.equal(await backend.compareAndSet('k', 'wrong', 'other'), false)
    t.equal(await backend.compareAndSet('k', '', 'other'), false, 'the empty string is a value, not "absent"')
    t.equal(await backend.get('k'), 'v1')
    t.equal(await backend.compareAndSet('k', 'v1', 'v2', 60_000), true)
    t.equal(await backend.get('k'), 'v2')
    t.ok(await client.pttl(redisKey(prefix, 'k')) > 59_000, 'the TTL is set with the write')
    t.equal(await backend.compareAndSet('k', 'v2', 'v3'), true)
    t.equal(await client.pttl(redisKey(prefix, 'k')), -1, 'no TTL: persistent')
    t.equal(await backend.compareAndSet('gone', 'v1', 'x'), false, 'an expected value on an absent key refuses')
    t.equal(await backend.get('gone'), undefined)
    await backend.set('empty', '')
    t.equal(await backend.compareAndSet('empty', '', 'filled'), true, 'an empty value can be compared')
    t.equal(await backend.get('empty'), 'filled')
  })

  t.test('compareAndSet is atomic: of 50 concurrent writers expecting the same value, one wins', async (t) => {
    const { backend } = fresh()
    await backend.set('k', 'start')
    const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => await backend.compareAndSet('k', 'start', `w${i}`)))
    t.equal(results.filter(Boolean).length, 1)
    t.equal(await backend.get('k'), `w${results.indexOf(true)}`)
  })

  t.test('compareAndDelete deletes only the expected value', async (t) => {
    const { backend } = fresh()
    await backend.set('k', 'v1')
    t.equal(await backend.compareAndDelete('k', 'v0'), false)
    t.equal(await backend.get('k'), 'v1')
    t.equal(await backend.compareAndDelete('k', 'v1'), true)
    t.equal(await backend.get('k'), undefined)
    t.equal(await backend.compareAndDelete('k', 'v1'), false, 'absent: nothing to delete')
  })

  t.test('scripts survive a SCRIPT FLUSH (EVALSHA falls back to EVAL)', async (t) => {
    const { backend } = fresh()
    await backend.set('k', 'v1')
    await flushScripts()
    t.equal(await backend.compareAndSet('k', 'v1', 'v2'), true)
    await flushScripts()
    t.equal(await backend.compareAndDelete('k', 'v2'), true)
    await flushScripts()
    const lock = await backend.tryLock('l', 1000)
    await flushScripts()
    t.equal(await lock?.extend(1000), true)
    await flushScripts()
    await lock?.release()
    t.ok(await backend.tryLock('l', 1000), 'released')
  })

  t.test('locks are exclusive until released or expired, and live under their own sub-prefix', async (t) => {
    const { backend, prefix } = fresh()
    const first = await backend.tryLock('refresh:u1', 5000)
    t.ok(first)
    t.match(first?.owner, /^[A-Za-z0-9_-]{22}$/, '128 random bits')
    t.equal(await client.get(redisKey(prefix, 'lock:refresh:u1')), first?.owner, 'SET <prefix>lock:<name> <owner>')
    const pttl = await client.pttl(redisKey(prefix, 'lock:refresh:u1'))
    t.ok(pttl > 4000 && pttl <= 5000, 'with PX')
    t.equal(await backend.tryLock('refresh:u1', 5000), undefined, 'held: a second taker gets nothing')
    t.ok(await backend.tryLock('refresh:u2', 5000), 'another name is another lock')
    const concurrent = await Promise.all(Array.from({ length: 20 }, async () => await backend.tryLock('race', 5000)))
    t.equal(concurrent.filter(Boolean).length, 1, 'of 20 concurrent takers exactly one wins')
    await first?.release()
    const second = await backend.tryLock('refresh:u1', 5000)
    t.ok(second, 'free again after release')
    t.not(second?.owner, first?.owner)
  })

  t.test('only the owner can extend or release; an expired lock can be taken over', async (t) => {
    const { backend, prefix } = fresh()
    const first = await backend.tryLock('l', 100)
    t.equal(await first?.extend(400), true, 'the owner extends')
    t.ok(await client.pttl(redisKey(prefix, 'lock:l')) > 300)
    await sleep(150)
    t.equal(await backend.tryLock('l', 100), undefined, 'the extension kept it held past its first TTL')
    await sleep(300)
    t.equal(await first?.extend(1000), false, 'expired: extend reports the lock lost and does not revive it')
    t.equal(await client.exists(redisKey(prefix, 'lock:l')), 0)
    const second = await backend.tryLock('l', 5000)
    t.ok(second, 'taken over after expiry')
    await first?.release()
    t.equal(await client.get(redisKey(prefix, 'lock:l')), second?.owner, "the old owner's release leaves the new owner's lock")
    t.equal(await first?.extend(5000), false, "the old owner's extend does not touch it either")
    t.equal(await backend.tryLock('l', 5000), undefined)
    await second?.release()
    await second?.release()
    t.equal(await client.exists(redisKey(prefix, 'lock:l')), 0, 'released (twice is harmless)')
  })

  t.test('scan lists keys under a prefix without the backend prefix, taking glob characters literally', async (t) => {
    const { backend } = fresh()
    const keys = ['a*b:1', 'a*b:2', 'axb:3', 'a[b]:1', 'ab:1', 'a?c', 'abc', 'a\\d', 'a\\\\d', 'session:x']
    for (const key of keys) await backend.set(key, 'v')
    t.same(await collect(backend.scan('a*b:')), ['a*b:1', 'a*b:2'], '* is not a wildcard')
    t.same(await collect(backend.scan('a[b]')), ['a[b]:1'], '[b] is not a character class')
    t.same(await collect(backend.scan('a?')), ['a?c'], '? is not a wildcard')
    t.same(await collect(backend.scan('a\\d')), ['a\\d'], 'a backslash is not an escape')
    t.same(await collect(backend.scan('zzz')), [])
    t.same(await collect(backend.scan('')), [...keys].sort())
    await t.rejects(async () => { for await (const key of backend.scan(5 as unknown as string)) t.fail(key) }, TypeError)
    t.equal(escapeGlob('x*?[]\\y'), 'x\\*\\?\\[\\]\\\\y')
  })

  t.test('glob characters in the backend prefix do not leak into other namespaces', async (t) => {
    const star = redisBackend(client, { prefix: 'app*[1]:' })
    const other = redisBackend(client, { prefix: 'app-x1]:' })
    const plain = redisBackend(client, { prefix: 'app*[1]' })
    await star.set('tokens:u1', 'v')
    await other.set('tokens:u2', 'v')
    await plain.set('x:tokens:u3', 'v')
    t.same(await collect(star.scan('tokens:')), ['tokens:u1'])
    t.same(await collect(other.scan('tokens:')), ['tokens:u2'])
    t.same(await collect(star.scan('')), ['tokens:u1'])
  })

  t.test('scan walks every SCAN cursor page', async (t) => {
    const { backend } = fresh()
    await Promise.all(Array.from({ length: 1500 }, async (_, i) => { await backend.set(`tokens:${i}`, 'v') }))
    await Promise.all(Array.from({ length: 300 }, async (_, i) => { await backend.set(`session:${i}`, 'v') }))
    const found = await collect(backend.scan('tokens:'))
    t.equal(new Set(found).size, 1500)
    t.ok(found.every((key) => key.startsWith('tokens:')))
  })

  t.test('scan never returns lock keys, and record keys cannot pose as locks', async (t) => {
    const { backend } = fresh()
    await backend.set('tokens:u1', 'v')
    await backend.set('locksmith', 'v')
    const lock = await backend.tryLock('refresh:u1', 5000)
    t.ok(lock)
    t.same(await collect(backend.scan('')), ['locksmith', 'tokens:u1'])
    t.same(await collect(backend.scan('lo')), ['locksmith'])
    t.same(await collect(backend.scan('lock:')), [])
    await t.rejects(backend.set('lock:refresh:u1', 'x'), RangeError)
    await t.rejects(backend.get('lock:refresh:u1'), RangeError)
    await t.rejects(backend.delete('lock:refresh:u1'), RangeError)
    await t.rejects(backend.compareAndDelete('lock:refresh:u1', lock?.owner as string), RangeError)
    await t.rejects(backend.get(5 as unknown as string), TypeError)
    await t.rejects(backend.tryLock('', 1000), TypeError)
    t.ok(await backend.tryLock('refresh:u2', 1000), 'the lock is untouched')
    t.equal(await backend.tryLock('refresh:u1', 1000), undefined, 'still held')
  })
}
