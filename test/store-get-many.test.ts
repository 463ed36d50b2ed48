/**
 * TokenStore.getMany: several records in one backend round trip, each decrypted on its own, so one
 * unreadable record fails no other; backends without getMany are read with parallel get()s.
 */
import { test } from 'tap'
import { StoreRecordError } from '../lib/errors.js'
import { encryptedStore } from '../lib/store/encrypted.js'
import { memoryBackend } from '../lib/store/memory.js'
import type { StoreBackend } from '../lib/store/types.js'
import { KEY_A, KEY_B } from './helpers/setup.js'

test('answers in the order asked, absent keys as readable and undefined, the same frozen values get() hands out', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [KEY_A] })
  await store.set('tokens:u', { userId: 'u' })
  await store.set('session:s', { userId: 'u', createdAt: 1 })
  const [session, missing, tokens] = await store.getMany(['session:s', 'session:none', 'tokens:u'])
  t.match(session, { readable: true, stored: { value: { userId: 'u', createdAt: 1 }, staleKey: false } })
  t.same(missing, { readable: true, stored: undefined })
  t.same(tokens?.readable === true ? tokens.stored?.value : undefined, { userId: 'u' })
  const again = await store.get('tokens:u')
  t.equal(tokens?.readable === true ? tokens.stored : undefined, again, 'the decrypted-record cache is shared with get()')
  t.same(await store.getMany([]), [])
})

test('an unreadable record is reported in its own slot; the others are still read', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [KEY_A] })
  await store.set('session:s', { userId: 'u' })
  await store.set('tokens:u', { userId: 'u' })
  const envelope = (await backend.get('tokens:u'))!
  await backend.set('tokens:u', `${envelope.slice(0, -4)}AAAA`)
  await encryptedStore(backend, { keys: [KEY_B] }).set('tokens:v', { userId: 'v' })
  await backend.set('tokens:w', 'not an envelope')
  const answers = await store.getMany(['tokens:u', 'session:s', 'tokens:v', 'tokens:w'])
  const reasons = answers.map((answer) => answer.readable ? 'readable' : answer.error.reason)
  t.same(reasons, ['auth-failed', 'readable', 'unknown-key', 'malformed'])
  t.ok(answers.every((answer) => answer.readable || answer.error instanceof StoreRecordError))
  await t.rejects(store.get('tokens:u'), StoreRecordError, 'the same record makes get() throw')
})

test('a backend without getMany is read with get()s in parallel; a backend failure rejects the whole call', async (t) => {
  const inner = memoryBackend()
  let inFlight = 0
  let most = 0
  let fail = false
  const plain: StoreBackend = {
    ...inner,
    getSync: undefined,
    getMany: undefined,
    get: async (key) => {
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise((resolve) => setImmediate(resolve))
      inFlight--
      if (fail) throw new Error('backend down')
      return await inner.get(key)
    }
  }
  const store = encryptedStore(plain, { keys: [KEY_A] })
  await store.set('a', 1)
  await store.set('b', 2)
  const answers = await store.getMany(['a', 'b', 'c'])
  t.same(answers.map((answer) => answer.readable ? answer.stored?.value : 'unreadable'), [1, 2, undefined])
  t.equal(most, 3, 'all three asked at once')
  fail = true
  await t.rejects(store.getMany(['a', 'b']), { message: 'backend down' })
})

test('a backend whose getMany is not a function is refused at start-up', async (t) => {
  t.throws(() => encryptedStore({ ...memoryBackend(), getMany: 'yes' } as unknown as StoreBackend, { keys: [KEY_A] }), { name: 'LightroomConfigError', option: 'backend', message: /getMany/ })
})

test('memory backend getMany honours expiry like get', async (t) => {
  let clock = 1000
  const backend = memoryBackend({ now: () => clock })
  await backend.set('short', 'x', 10)
  await backend.set('long', 'y', 1000)
  t.same(await backend.getMany!(['short', 'long', 'none']), ['x', 'y', undefined])
  clock += 50
  t.same(await backend.getMany!(['short', 'long']), [undefined, 'y'])
})
