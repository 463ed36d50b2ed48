import { test } from 'tap'
import { memoryBackend } from '../lib/store/memory.js'
import { fakeClock } from './helpers/clock.js'

async function collect (iterable: AsyncIterable<string>): Promise<string[]> {
  const keys: string[] = []
  for await (const key of iterable) keys.push(key)
  return keys
}

test('stores and deletes strings', async (t) => {
  const backend = memoryBackend()
  t.equal(await backend.get('a'), undefined)
  await backend.set('a', 'one')
  t.equal(await backend.get('a'), 'one')
  await backend.set('a', 'two')
  t.equal(await backend.get('a'), 'two')
  await backend.delete('a')
  t.equal(await backend.get('a'), undefined)
  await backend.delete('never-there')
})

test('a record disappears once its TTL has passed, and only then', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  await backend.set('short', 'x', 1000)
  await backend.set('forever', 'y')
  clock.advance(999)
  t.equal(await backend.get('short'), 'x')
  clock.advance(1)
  t.equal(await backend.get('short'), undefined)
  clock.advance(10 * 365 * 24 * 3600_000)
  t.equal(await backend.get('forever'), 'y')
})

test('overwriting a record replaces its TTL', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  await backend.set('k', 'a', 1000)
  await backend.set('k', 'b')
  clock.advance(5000)
  t.equal(await backend.get('k'), 'b')
  await backend.set('k', 'c', 1000)
  clock.advance(1000)
  t.equal(await backend.get('k'), undefined)
})

test('rejects a zero, negative or non-finite TTL instead of storing forever', async (t) => {
  const backend = memoryBackend()
  for (const ttl of [0, -1, NaN, Infinity]) {
    await t.rejects(backend.set('k', 'v', ttl), RangeError)
    await t.rejects(backend.compareAndSet('k', undefined, 'v', ttl), RangeError)
    await t.rejects(backend.tryLock('lock', ttl), RangeError)
  }
  t.equal(await backend.get('k'), undefined)
  t.throws(() => memoryBackend({ now: 5 as unknown as () => number }), TypeError)
})

test('size counts live records and reclaims expired ones', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  t.equal(backend.size, 0)
  await backend.set('a', '1', 1000)
  await backend.set('b', '2', 2000)
  await backend.set('c', '3')
  t.equal(backend.size, 3)
  clock.advance(1500)
  t.equal(backend.size, 2)
  clock.advance(1000)
  t.equal(backend.size, 1)
})

// Sweeping is observed by turning the fake clock back: a record that is still
// resident would come back to life, a reclaimed one stays gone.
test('expired records are reclaimed by later writes even if never read again', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  for (let i = 0; i < 100; i++) await backend.set(`old:${i}`, 'v', 1000)
  const lock = await backend.tryLock('l', 1000)
  clock.advance(1000)
  clock.advance(-1)
  t.equal(await backend.get('old:0'), 'v', 'control: without writes an expired record is still resident')
  clock.advance(1)
  // Writes to an unrelated key: the old records are never read, yet must go.
  for (let i = 0; i < 100; i++) await backend.set('other', String(i))
  clock.advance(-1)
  const resurrected: string[] = []
  for (let i = 0; i < 100; i++) {
    if (await backend.get(`old:${i}`) !== undefined) resurrected.push(`old:${i}`)
  }
  t.same(resurrected, [])
  t.ok(await backend.tryLock('l', 1000), 'the lock table is swept too')
  t.equal(await lock?.extend(1000), false)
})

test('the sweep copes with reclaiming the last record', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  await backend.set('only', 'v', 10)
  clock.advance(10)
  await backend.delete('unrelated')
  clock.advance(-1)
  t.equal(await backend.get('only'), undefined)
  t.equal(backend.size, 0)
})

test('compareAndSet writes only over the expected value', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  t.equal(await backend.compareAndSet('k', undefined, 'first'), true, 'absent and expected absent')
  t.equal(await backend.compareAndSet('k', undefined, 'again'), false, 'present but expected absent')
  t.equal(await backend.compareAndSet('k', 'stale', 'x'), false, 'wrong expected value')
  t.equal(await backend.get('k'), 'first')
  t.equal(await backend.compareAndSet('k', 'first', 'second', 1000), true)
  t.equal(await backend.get('k'), 'second')
  t.equal(await backend.compareAndSet('missing', 'something', 'x'), false, 'absent but expected a value')
  clock.advance(1000)
  t.equal(await backend.compareAndSet('k', 'second', 'x'), false, 'an expired record is absent')
  t.equal(await backend.compareAndSet('k', undefined, 'fresh'), true)
  t.equal(await backend.get('k'), 'fresh')
})

test('compareAndDelete deletes only the expected value', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  await backend.set('k', 'v1')
  t.equal(await backend.compareAndDelete('k', 'v0'), false)
  t.equal(await backend.get('k'), 'v1')
  t.equal(await backend.compareAndDelete('k', 'v1'), true)
  t.equal(await backend.get('k'), undefined)
  t.equal(await backend.compareAndDelete('k', 'v1'), false)
  await backend.set('e', 'v', 10)
  clock.advance(10)
  t.equal(await backend.compareAndDelete('e', 'v'), false, 'an expired record is absent')
})

test('a lock is exclusive until released', async (t) => {
  const backend = memoryBackend()
  const first = await backend.tryLock('refresh:u1', 1000)
  t.ok(first)
  t.equal(await backend.tryLock('refresh:u1', 1000), undefined)
  t.ok(await backend.tryLock('refresh:u2', 1000), 'other names are independent')
  await first?.release()
  const second = await backend.tryLock('refresh:u1', 1000)
  t.ok(second)
  t.not(second?.owner, first?.owner, 'each acquisition has its own owner')
  await first?.release()
  t.equal(await backend.tryLock('refresh:u1', 1000), undefined, 'a released lock released again does nothing')
})

test('a lock nobody releases expires after its TTL', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  t.ok(await backend.tryLock('l', 1000))
  clock.advance(999)
  t.equal(await backend.tryLock('l', 1000), undefined)
  clock.advance(1)
  t.ok(await backend.tryLock('l', 1000))
})

test('only the owner releases or extends; an expired holder cannot touch its successor', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  const old = await backend.tryLock('l', 1000)
  clock.advance(1000)
  t.equal(await old?.extend(1000), false, 'an expired lock is lost, even before anyone takes it')
  const current = await backend.tryLock('l', 1000)
  t.ok(current)
  t.equal(await old?.extend(5000), false)
  await old?.release()
  t.equal(await backend.tryLock('l', 1000), undefined, 'the old owner did not release the new lock')
  clock.advance(999)
  t.equal(await backend.tryLock('l', 1000), undefined, 'nor shorten or lengthen it')
  clock.advance(1)
  t.ok(await backend.tryLock('l', 1000))
})

test('extend pushes the expiry out from now', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  const lock = await backend.tryLock('l', 1000)
  clock.advance(900)
  t.equal(await lock?.extend(1000), true)
  clock.advance(900)
  t.equal(await backend.tryLock('l', 1000), undefined, 'still held 1800 ms after taking it')
  clock.advance(100)
  t.ok(await backend.tryLock('l', 1000), 'gone 1000 ms after the extension')
  await t.rejects(lock!.extend(0), RangeError)
})

test('scan yields the live keys under a prefix', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  await backend.set('tokens:a', '1')
  await backend.set('tokens:b', '2', 1000)
  await backend.set('tokens:c', '3')
  await backend.set('sessions:a', '4')
  t.same((await collect(backend.scan('tokens:'))).sort(), ['tokens:a', 'tokens:b', 'tokens:c'])
  t.same((await collect(backend.scan(''))).length, 4)
  clock.advance(1000)
  t.same((await collect(backend.scan('tokens:'))).sort(), ['tokens:a', 'tokens:c'])
})

test('scan tolerates writes while iterating and never yields a key twice', async (t) => {
  const backend = memoryBackend()
  for (const key of ['p:1', 'p:2', 'p:3']) await backend.set(key, 'v')
  const seen: string[] = []
  for await (const key of backend.scan('p:')) {
    seen.push(key)
    // Delete-and-recreate moves a key to the end of the Map's order.
    await backend.delete(key)
    await backend.set(key, 'w')
    await backend.delete('p:3')
  }
  t.same(seen, ['p:1', 'p:2'], 'keys deleted during the scan are not yielded')
})

test('getSync answers like get, expiry included', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  await backend.set('k', 'v', 100)
  t.equal(backend.getSync!('k'), 'v')
  t.equal(backend.getSync!('missing'), undefined)
  clock.advance(100)
  t.equal(backend.getSync!('k'), undefined)
})
