import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { test } from 'tap'
import { LightroomConfigError, StoreRecordError } from '../lib/errors.js'
import { encryptedStore, generateEncryptionKey, parseEncryptionKeys } from '../lib/store/encrypted.js'
import { memoryBackend } from '../lib/store/memory.js'
import { kEncryptsAtRest } from '../lib/store/types.js'
import type { StoreBackend, TokenStore } from '../lib/store/types.js'
import { fakeClock } from './helpers/clock.js'

const KEY_A = randomBytes(32)
const KEY_B = randomBytes(32)
const KEY_C = randomBytes(32)
const A = { id: 'A', key: KEY_A }
const B = { id: 'B', key: KEY_B }
const C = { id: 'C', key: KEY_C }

const tokens = {
  userId: 'ALICE@AdobeID',
  accessToken: 'eyJhbGciOiJSUzI1NiJ9.access-token-secret-value',
  refreshToken: 'eyJhbGciOiJSUzI1NiJ9.refresh-token-secret-value',
  email: 'alice@example.com',
  tokenType: 'bearer',
  accessExpiresAt: 1_700_000_000_000
}

/** Builds an envelope by hand, following the documented format, to test what the store accepts. */
function sealByHand (key: Buffer, keyId: string, recordKey: string, plaintext: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(recordKey))
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return ['v1', keyId, iv, ciphertext, cipher.getAuthTag()].map((part) => typeof part === 'string' ? part : part.toString('base64url')).join('.')
}

function openByHand (key: Buffer, recordKey: string, envelope: string): string {
  const [, , iv, ciphertext, tag] = envelope.split('.').map((part) => Buffer.from(part, 'base64url'))
  const decipher = createDecipheriv('aes-256-gcm', key, iv as Buffer)
  decipher.setAAD(Buffer.from(recordKey))
  decipher.setAuthTag(tag as Buffer)
  return Buffer.concat([decipher.update(ciphertext as Buffer), decipher.final()]).toString('utf8')
}

/** Changes one binary part (2 = IV, 3 = ciphertext, 4 = tag) of an envelope. */
function editPart (envelope: string, index: number, edit: (bytes: Buffer) => Buffer): string {
  const parts = envelope.split('.')
  parts[index] = edit(Buffer.from(parts[index] as string, 'base64url')).toString('base64url')
  return parts.join('.')
}

function flipBit (bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes)
  copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0x01
  return copy
}

async function readError (store: TokenStore, key: string): Promise<StoreRecordError> {
  try {
    await store.get(key)
  } catch (err) {
    if (err instanceof StoreRecordError) return err
    throw err
  }
  throw new Error(`expected ${key} to be unreadable`)
}

test('a value round-trips and the backend only ever sees ciphertext', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  await store.set('tokens:alice', tokens)
  const read = await store.get<typeof tokens>('tokens:alice')
  t.same(read?.value, tokens)
  t.equal(read?.staleKey, false)
  const raw = await backend.get('tokens:alice') as string
  t.equal(read?.revision, raw, 'the revision is the raw envelope')
  t.match(raw, /^v1\.A\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/)

  const secrets = [tokens.accessToken, tokens.refreshToken, tokens.email, 'access-token-secret', 'example.com']
  const decodedParts = raw.split('.').flatMap((part) => [Buffer.from(part, 'base64url').toString('latin1'), Buffer.from(part, 'base64').toString('latin1')])
  for (const secret of secrets) {
    t.notOk(raw.includes(secret), 'no plaintext in the record')
    t.notOk(decodedParts.some((part) => part.includes(secret)), 'no plaintext behind a base64 layer either')
  }
  t.notOk(raw.includes(Buffer.from(JSON.stringify(tokens)).toString('base64url').slice(0, 40)))

  t.equal(await store.get('tokens:nobody'), undefined)
})

test('the plaintext is { v, exp } JSON, authenticated with the record key', async (t) => {
  const clock = fakeClock()
  t.capture(Date, 'now', clock.now)
  const backend = memoryBackend({ now: clock.now })
  const store = encryptedStore(backend, { keys: [A] })
  await store.set('tokens:alice', { a: 1 }, 60_000)
  await store.set('tokens:bob', 'forever')
  t.same(JSON.parse(openByHand(KEY_A, 'tokens:alice', await backend.get('tokens:alice') as string)), { v: { a: 1 }, exp: clock.now() + 60_000 })
  t.same(JSON.parse(openByHand(KEY_A, 'tokens:bob', await backend.get('tokens:bob') as string)), { v: 'forever', exp: null })
  t.throws(() => openByHand(KEY_A, 'tokens:bob', sealByHand(KEY_A, 'A', 'tokens:alice', '{}')), 'control: AAD mismatch fails by hand too')
  const byHand = sealByHand(KEY_A, 'A', 'tokens:carol', JSON.stringify({ v: [1, 2], exp: null }))
  await backend.set('tokens:carol', byHand)
  t.same(await store.get('tokens:carol'), { value: [1, 2], revision: byHand, staleKey: false })
})

test('two writes of the same value use different IVs and ciphertexts', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  await store.set('tokens:alice', tokens)
  const first = await backend.get('tokens:alice') as string
  await store.set('tokens:alice', tokens)
  const second = await backend.get('tokens:alice') as string
  t.not(first.split('.')[2], second.split('.')[2])
  t.not(first.split('.')[3], second.split('.')[3])
})

test('the TTL is passed to the backend', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  const store = encryptedStore(backend, { keys: [A] })
  await store.set('tokens:alice', tokens, 1000)
  t.ok(await store.compareAndSet('tokens:bob', undefined, tokens, 1000))
  clock.advance(1000)
  t.equal(await store.get('tokens:alice'), undefined)
  t.equal(await store.get('tokens:bob'), undefined)
})

test('a record copied to another user\'s key fails authentication', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  await store.set('tokens:alice', tokens)
  const raw = await backend.get('tokens:alice') as string
  await backend.set('tokens:mallory', raw)
  const err = await readError(store, 'tokens:mallory')
  t.equal(err.reason, 'auth-failed')
  t.equal(err.key, 'tokens:mallory')
  t.equal(err.code, 'LR_STORE_CORRUPT')
  t.notOk(err.message.includes(raw))
})

test('damaged records are refused with the reason, never the content', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  await store.set('tokens:alice', tokens)
  const good = await backend.get('tokens:alice') as string
  const [, , iv, ciphertext, tag] = good.split('.') as [string, string, string, string, string]
  const cases: Array<[string, string, StoreRecordError['reason']]> = [
    ['ciphertext truncated by one byte', editPart(good, 3, (b) => b.subarray(0, -1)), 'auth-failed'],
    ['one bit flipped in the ciphertext', editPart(good, 3, flipBit), 'auth-failed'],
    ['one bit flipped in the tag', editPart(good, 4, flipBit), 'auth-failed'],
    ['one bit flipped in the IV', editPart(good, 2, flipBit), 'auth-failed'],
    ['envelope cut short (tag truncated)', good.slice(0, -4), 'malformed'],
    ['tag shortened to 12 bytes', editPart(good, 4, (b) => b.subarray(0, 12)), 'malformed'],
    ['IV of 16 bytes', editPart(good, 2, () => randomBytes(16)), 'malformed'],
    ['empty ciphertext', ['v1', 'A', iv, '', tag].join('.'), 'malformed'],
    ['unknown key id', good.replace(/^v1\.A\./, 'v1.Z.'), 'unknown-key'],
    ['wrong version', good.replace(/^v1\./, 'v2.'), 'malformed'],
    ['no version', good.slice(3), 'malformed'],
    ['an extra part', `${good}.AAAA`, 'malformed'],
    ['invalid key id', good.replace(/^v1\.A\./, 'v1.A B.'), 'malformed'],
    ['padding in base64url', ['v1', 'A', iv, ciphertext, `${tag}==`].join('.'), 'malformed'],
    ['a character outside base64url', ['v1', 'A', iv, `${ciphertext.slice(0, -1)}*`, tag].join('.'), 'malformed'],
    ['garbage', 'not an envelope at all', 'malformed'],
    ['empty string', '', 'malformed'],
    ['plaintext JSON', JSON.stringify(tokens), 'malformed']
  ]
  for (const [name, raw, reason] of cases) {
    t.not(raw, good, `${name}: the case really changes the record`)
    await backend.set('tokens:alice', raw)
    const err = await readError(store, 'tokens:alice')
    t.equal(err.reason, reason, name)
    if (raw.length > 0) t.notOk(err.message.includes(raw), `${name}: message does not quote the record`)
    t.notOk(err.message.includes(tokens.accessToken))
  }
})

test('authentic plaintext that is not our JSON wrapper is bad-json', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  for (const plaintext of ['not json {', '"a string"', 'null', '{"v":1}', '{"exp":null}', '{"v":1,"exp":"soon"}']) {
    await backend.set('tokens:alice', sealByHand(KEY_A, 'A', 'tokens:alice', plaintext))
    const err = await readError(store, 'tokens:alice')
    t.equal(err.reason, 'bad-json', plaintext)
    t.notOk(err.message.includes(plaintext))
  }
})

test('backend errors pass through untouched (reencryptAll: as the cause of its LightroomBatchError)', async (t) => {
  const down = new Error('connect ECONNREFUSED 127.0.0.1:6379')
  const inner = memoryBackend()
  await inner.set('tokens:alice', 'anything')
  const backend: StoreBackend = { ...inner, get: async () => { throw down } }
  const store = encryptedStore(backend, { keys: [A] })
  await t.rejects(store.get('tokens:alice'), down)
  await t.rejects(store.reencryptAll(), { code: 'LR_BATCH_INCOMPLETE', cause: down, report: { scanned: 1, reencrypted: 0, completed: false } })
  try {
    await store.get('tokens:alice')
  } catch (err) {
    t.equal(err, down, 'the very same error object')
  }
})

test('compareAndSet and compareAndDelete honour the revision', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  t.equal(await store.compareAndSet('tokens:alice', undefined, { n: 1 }), true, 'undefined revision writes when absent')
  t.equal(await store.compareAndSet('tokens:alice', undefined, { n: 99 }), false, 'undefined revision does not overwrite')
  const first = await store.get<{ n: number }>('tokens:alice')
  t.equal(first?.value.n, 1)
  t.equal(await store.compareAndSet('tokens:alice', first?.revision, { n: 2 }), true, 'current revision writes')
  t.equal(await store.compareAndSet('tokens:alice', first?.revision, { n: 3 }), false, 'stale revision does not')
  const second = await store.get<{ n: number }>('tokens:alice')
  t.equal(second?.value.n, 2)
  t.equal(await store.compareAndDelete('tokens:alice', first?.revision as string), false, 'stale revision does not delete')
  t.ok(await store.get('tokens:alice'))
  t.equal(await store.compareAndDelete('tokens:alice', second?.revision as string), true)
  t.equal(await store.get('tokens:alice'), undefined)
  await store.set('tokens:bob', 1)
  await store.delete('tokens:bob')
  t.equal(await store.get('tokens:bob'), undefined)
})

test('locks pass through to the backend', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  const lock = await store.tryLock('refresh:alice', 1000)
  t.ok(lock)
  t.equal(await backend.tryLock('refresh:alice', 1000), undefined)
  await lock?.release()
  t.ok(await store.tryLock('refresh:alice', 1000))
})

test('values that JSON cannot carry and bad TTLs are refused before writing', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  await t.rejects(store.set('k', undefined), TypeError)
  await t.rejects(store.set('k', () => 1), TypeError)
  await t.rejects(store.compareAndSet('k', undefined, Symbol('x')), TypeError)
  await t.rejects(store.set('k', 1, 0), RangeError)
  await t.rejects(store.set('k', 1, -5), RangeError)
  await t.rejects(store.set('k', 1, NaN), RangeError)
  t.equal(backend.size, 0)
})

test('the store is marked as encrypting at rest and exposes its backend', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [A] })
  t.equal(store[kEncryptsAtRest], true)
  t.equal(store.backend, backend)
})

test('rotation: old keys decrypt, the first key encrypts', async (t) => {
  const backend = memoryBackend()
  await encryptedStore(backend, { keys: [A] }).set('tokens:alice', tokens)

  const rotated = encryptedStore(backend, { keys: [B, A] })
  const read = await rotated.get('tokens:alice')
  t.same(read?.value, tokens)
  t.equal(read?.staleKey, true, 'a record under A is stale once B is current')

  await rotated.set('tokens:bob', tokens)
  t.match(await backend.get('tokens:bob'), /^v1\.B\./, 'new writes use B')
  t.ok(await rotated.compareAndSet('tokens:alice', read?.revision, tokens))
  t.match(await backend.get('tokens:alice'), /^v1\.B\./, 'rewriting an old record re-encrypts it under B')
  t.equal((await rotated.get('tokens:alice'))?.staleKey, false)

  await encryptedStore(backend, { keys: [A] }).set('tokens:carol', tokens)
  const onlyB = encryptedStore(backend, { keys: [B] })
  t.same((await onlyB.get('tokens:bob'))?.value, tokens)
  t.equal((await readError(onlyB, 'tokens:carol')).reason, 'unknown-key', 'A was dropped before carol was re-encrypted')
})

test('reencryptAll moves old-key records to the current key and counts what it did', async (t) => {
  const clock = fakeClock()
  const backend = memoryBackend({ now: clock.now })
  const underA = encryptedStore(backend, { keys: [A] })
  const underB = encryptedStore(backend, { keys: [B] })
  await underA.set('tokens:1', { n: 1 })
  await underA.set('tokens:2', { n: 2 })
  await underB.set('tokens:3', { n: 3 })
  await encryptedStore(backend, { keys: [C] }).set('tokens:4', { n: 4 })
  await underA.set('tokens:5', { n: 5 })
  await backend.set('tokens:5', editPart(await backend.get('tokens:5') as string, 3, flipBit))
  await backend.set('tokens:6', 'garbage')
  await underA.set('sessions:1', { s: 1 })

  const store = encryptedStore(backend, { keys: [B, A] })
  const tokens5 = await backend.get('tokens:5')
  t.same(await store.reencryptAll('tokens:'), { scanned: 6, reencrypted: 2, failed: 3, completed: true, aborted: false })
  for (const key of ['tokens:1', 'tokens:2', 'tokens:3']) t.match(await backend.get(key), /^v1\.B\./, key)
  t.same((await store.get('tokens:1'))?.value, { n: 1 })
  t.same((await store.get('tokens:2'))?.value, { n: 2 })
  t.match(await backend.get('tokens:4'), /^v1\.C\./, 'unknown key: left alone')
  t.equal(await backend.get('tokens:5'), tokens5, 'tampered: left alone')
  t.equal(await backend.get('tokens:6'), 'garbage', 'garbage: left alone')
  t.match(await backend.get('sessions:1'), /^v1\.A\./, 'outside the prefix: untouched')

  const current = await backend.get('tokens:3')
  t.same(await store.reencryptAll('tokens:'), { scanned: 6, reencrypted: 0, failed: 3, completed: true, aborted: false }, 'a rerun only meets the unreadable ones')
  t.equal(await backend.get('tokens:3'), current, 'current-key records are not rewritten')

  t.same(await store.reencryptAll(), { scanned: 7, reencrypted: 1, failed: 3, completed: true, aborted: false }, 'the default prefix covers everything')
  t.match(await backend.get('sessions:1'), /^v1\.B\./)
})

test('reencryptAll keeps each record\'s remaining life', async (t) => {
  const clock = fakeClock()
  t.capture(Date, 'now', clock.now)
  const backend = memoryBackend({ now: clock.now })
  const underA = encryptedStore(backend, { keys: [A] })
  await underA.set('tokens:short', tokens, 60_000)
  await underA.set('tokens:forever', tokens)
  clock.advance(20_000)

  const store = encryptedStore(backend, { keys: [B, A] })
  t.same(await store.reencryptAll(), { scanned: 2, reencrypted: 2, failed: 0, completed: true, aborted: false })
  t.match(await backend.get('tokens:short'), /^v1\.B\./)
  clock.advance(39_999)
  t.ok(await store.get('tokens:short'), 'alive until its original expiry')
  clock.advance(1)
  t.equal(await store.get('tokens:short'), undefined, 'and not a moment longer')
  clock.advance(365 * 24 * 3600_000)
  t.ok(await store.get('tokens:forever'), 'a record without TTL keeps having none')
})

test('reencryptAll leaves alone a record already past its own expiry', async (t) => {
  const backendClock = fakeClock()
  const appClock = fakeClock()
  t.capture(Date, 'now', appClock.now)
  const backend = memoryBackend({ now: backendClock.now })
  await encryptedStore(backend, { keys: [A] }).set('tokens:alice', tokens, 1000)
  const raw = await backend.get('tokens:alice')
  // The backend's clock lags the application's: it has not dropped the record yet.
  appClock.advance(1000)
  t.same(await encryptedStore(backend, { keys: [B, A] }).reencryptAll(), { scanned: 1, reencrypted: 0, failed: 0, completed: true, aborted: false })
  t.equal(await backend.get('tokens:alice'), raw)
})

test('reencryptAll lets a concurrent writer win and skips records deleted meanwhile', async (t) => {
  const inner = memoryBackend()
  await encryptedStore(inner, { keys: [A] }).set('tokens:alice', { n: 1 })
  const racing = encryptedStore(inner, { keys: [B, A] })
  const backend: StoreBackend = {
    ...inner,
    async * scan (prefix) {
      yield * inner.scan(prefix)
      yield 'tokens:deleted'
    },
    async compareAndSet (key, expected, value, ttlMs) {
      // Another instance refreshes alice's tokens between our read and our write.
      await racing.set(key, { n: 2 })
      return await inner.compareAndSet(key, expected, value, ttlMs)
    }
  }
  const store = encryptedStore(backend, { keys: [B, A] })
  t.same(await store.reencryptAll(), { scanned: 2, reencrypted: 0, failed: 0, completed: true, aborted: false })
  t.same((await store.get('tokens:alice'))?.value, { n: 2 }, 'the concurrent write survives')
})

test('every accepted key encoding means the same key', async (t) => {
  const backend = memoryBackend()
  const forms = [
    KEY_A,
    new Uint8Array(KEY_A),
    KEY_A.toString('base64'),
    KEY_A.toString('base64').replace(/=+$/, ''),
    KEY_A.toString('base64url'),
    KEY_A.toString('hex'),
    KEY_A.toString('hex').toUpperCase()
  ]
  await encryptedStore(backend, { keys: [A] }).set('tokens:alice', tokens)
  for (const key of forms) {
    const store = encryptedStore(backend, { keys: [{ id: 'A', key }] })
    t.same((await store.get('tokens:alice'))?.value, tokens, typeof key === 'string' ? `string of ${key.length}` : key.constructor.name)
  }
})

test('the caller mutating its key buffer later does not change the store\'s key', async (t) => {
  const backend = memoryBackend()
  const mine = Buffer.from(KEY_A)
  const store = encryptedStore(backend, { keys: [{ id: 'A', key: mine }] })
  mine.fill(0)
  await store.set('tokens:alice', tokens)
  t.same((await encryptedStore(backend, { keys: [A] }).get('tokens:alice'))?.value, tokens)
})

test('bad options are refused up front, naming the option and quoting no key material', async (t) => {
  const backend = memoryBackend()
  const secretKey = generateEncryptionKey()
  const short = randomBytes(31)
  const cases: Array<[string, unknown, unknown, string]> = [
    ['no options', backend, undefined, 'keys'],
    ['no keys', backend, { keys: [] }, 'keys'],
    ['keys not an array', backend, { keys: A }, 'keys'],
    ['a key entry that is not an object', backend, { keys: [A, 'B:xyz'] }, 'keys[1]'],
    ['31-byte Buffer', backend, { keys: [A, { id: 'B', key: short }] }, 'keys[1].key'],
    ['31 bytes in base64', backend, { keys: [{ id: 'A', key: short.toString('base64') }] }, 'keys[0].key'],
    ['33 bytes in base64url', backend, { keys: [{ id: 'A', key: randomBytes(33).toString('base64url') }] }, 'keys[0].key'],
    ['62 hex characters', backend, { keys: [{ id: 'A', key: short.toString('hex') }] }, 'keys[0].key'],
    ['not an encoding we know', backend, { keys: [{ id: 'A', key: `${secretKey}!` }] }, 'keys[0].key'],
    ['a number as key', backend, { keys: [{ id: 'A', key: 42 }] }, 'keys[0].key'],
    ['missing key', backend, { keys: [{ id: 'A' }] }, 'keys[0].key'],
    ['id with a space', backend, { keys: [{ id: 'key one', key: KEY_A }] }, 'keys[0].id'],
    ['empty id', backend, { keys: [{ id: '', key: KEY_A }] }, 'keys[0].id'],
    ['33-character id', backend, { keys: [{ id: 'x'.repeat(33), key: KEY_A }] }, 'keys[0].id'],
    ['id with a dot', backend, { keys: [{ id: 'v1.A', key: KEY_A }] }, 'keys[0].id'],
    ['a key pasted into the id', backend, { keys: [{ id: secretKey, key: KEY_A }] }, 'keys[0].id'],
    ['duplicate ids', backend, { keys: [A, B, { id: 'A', key: KEY_C }] }, 'keys[2].id'],
    ['no backend', undefined, { keys: [A] }, 'backend'],
    ['a Map is not a backend', new Map(), { keys: [A] }, 'backend'],
    ['a backend without scan', { ...backend, scan: undefined }, { keys: [A] }, 'backend']
  ]
  for (const [name, badBackend, options, option] of cases) {
    try {
      encryptedStore(badBackend as StoreBackend, options as { keys: [] })
      t.fail(`${name}: accepted`)
    } catch (err) {
      t.ok(err instanceof LightroomConfigError, name)
      const { option: named, message } = err as LightroomConfigError
      t.equal(named, option, `${name}: names ${option}`)
      t.ok(message.includes(`"${option}"`), `${name}: the message names ${option}`)
      for (const material of [secretKey, short.toString('base64'), short.toString('hex'), KEY_A.toString('base64'), KEY_A.toString('hex')]) {
        t.notOk(message.includes(material), `${name}: no key material in the message`)
      }
    }
  }
})

test('generateEncryptionKey makes a fresh 32-byte base64 key the store accepts', async (t) => {
  const key = generateEncryptionKey()
  t.match(key, /^[A-Za-z0-9+/]{43}=$/)
  t.equal(Buffer.from(key, 'base64').length, 32)
  t.not(generateEncryptionKey(), key)
  const store = encryptedStore(memoryBackend(), { keys: [{ id: 'k1', key }] })
  await store.set('tokens:alice', tokens)
  t.same((await store.get('tokens:alice'))?.value, tokens)
})

test('parseEncryptionKeys reads "id:key,id:key" with the first key current', async (t) => {
  const k1 = generateEncryptionKey()
  const k2 = generateEncryptionKey()
  const keys = parseEncryptionKeys(`2025-06:${k1}, 2024_12 : ${k2}\n`)
  t.same(keys, [{ id: '2025-06', key: k1 }, { id: '2024_12', key: k2 }])

  const backend = memoryBackend()
  await encryptedStore(backend, { keys: [{ id: '2024_12', key: k2 }] }).set('tokens:alice', tokens)
  const store = encryptedStore(backend, { keys })
  t.equal((await store.get('tokens:alice'))?.staleKey, true)
  await store.set('tokens:bob', tokens)
  t.match(await backend.get('tokens:bob'), /^v1\.2025-06\./)
})

test('parseEncryptionKeys refuses malformed text, naming the entry and quoting no key', async (t) => {
  const k1 = generateEncryptionKey()
  const short = randomBytes(16).toString('base64')
  const cases: Array<[string, unknown, string]> = [
    ['empty', '', 'keys'],
    ['blank', '  \n', 'keys'],
    ['not a string', undefined, 'keys'],
    ['no colon', k1, 'keys[0]'],
    ['a stray comma', `a:${k1},`, 'keys[1]'],
    ['a short key', `a:${k1},b:${short}`, 'keys[1].key'],
    ['a bad id', `a b:${k1}`, 'keys[0].id'],
    ['an empty id', `:${k1}`, 'keys[0].id'],
    ['a duplicate id', `a:${k1},a:${generateEncryptionKey()}`, 'keys[1].id']
  ]
  for (const [name, text, option] of cases) {
    try {
      parseEncryptionKeys(text as string)
      t.fail(`${name}: accepted`)
    } catch (err) {
      t.ok(err instanceof LightroomConfigError, name)
      t.equal((err as LightroomConfigError).option, option, `${name}: names ${option}`)
      t.notOk((err as Error).message.includes(k1), `${name}: no key in the message`)
      t.notOk((err as Error).message.includes(short), `${name}: no key in the message`)
    }
  }
})

test('decrypted records are reused while the backend returns the same envelope, and never after it changes', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }] })
  await store.set('tokens:u', { accessToken: 'first' })
  const a = await store.get<{ accessToken: string }>('tokens:u')
  const b = await store.get<{ accessToken: string }>('tokens:u')
  t.equal(a, b, 'the same frozen object for an unchanged record')
  t.ok(Object.isFrozen(a!.value), 'shared values cannot be changed by a reader')
  t.throws(() => { (a!.value as { accessToken: string }).accessToken = 'x' })
  // Another process (same backend, its own store) writes a new envelope.
  await encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }] }).set('tokens:u', { accessToken: 'second' })
  t.equal((await store.get<{ accessToken: string }>('tokens:u'))!.value.accessToken, 'second', 'a changed envelope is decrypted again')
  await backend.delete('tokens:u')
  t.equal(await store.get('tokens:u'), undefined, 'a record gone from the backend is gone')
  // A cached key must not mask tampering: a moved envelope still fails.
  await store.set('tokens:v', { accessToken: 'v' })
  await store.get('tokens:v')
  await store.set('tokens:w', { accessToken: 'w' })
  await backend.set('tokens:v', (await backend.get('tokens:w'))!)
  await t.rejects(store.get('tokens:v'), { code: 'LR_STORE_CORRUPT', reason: 'auth-failed' })
})

test('the decrypted cache is bounded and can be disabled', async (t) => {
  const backend = memoryBackend()
  const off = encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }], cacheSize: 0 })
  await off.set('k', { n: 1 })
  t.not(await off.get('k'), await off.get('k'), 'cacheSize 0: decrypted on every read')
  const small = encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }], cacheSize: 2 })
  for (const key of ['a', 'b', 'c']) await small.set(key, { key })
  const a1 = await small.get('a')
  await small.get('b')
  await small.get('c')
  t.not(await small.get('a'), a1, 'the oldest entry was evicted')
  for (const bad of [-1, 1.5, '10']) {
    t.throws(() => encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }], cacheSize: bad as number }), LightroomConfigError)
    t.throws(() => encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }], cacheSize: bad as number }), /option "cacheSize"/)
  }
})

test('peek answers from memory only for an unchanged record of a synchronous backend', async (t) => {
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }] })
  await store.set('session:s', { userId: 'u' })
  t.equal(store.peek('session:s'), undefined, 'nothing decrypted yet: no answer (peek never decrypts)')
  const read = await store.get('session:s')
  t.equal(store.peek('session:s'), read, 'after a read: the same value, synchronously')
  await encryptedStore(backend, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }] }).set('session:s', { userId: 'other' })
  t.equal(store.peek('session:s'), undefined, 'the envelope changed underneath: no answer')
  await store.get('session:s')
  await backend.delete('session:s')
  t.equal(store.peek('session:s'), undefined, 'deleted in the backend: no answer')
  const asyncOnly = Object.create(backend) as StoreBackend
  asyncOnly.getSync = undefined
  const remote = encryptedStore(asyncOnly, { keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }] })
  await remote.set('session:r', { userId: 'u' })
  await remote.get('session:r')
  t.equal(remote.peek('session:r'), undefined, 'a backend without getSync (Redis) is always read')
})
