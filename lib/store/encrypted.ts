/**
 * Encryption at rest for any StoreBackend: AES-256-GCM, the key id in the
 * envelope, the record's key as associated data. Backends only ever see
 * envelopes of the form
 *
 *   v1.<keyId>.<iv>.<ciphertext>.<tag>      (binary parts base64url, unpadded)
 *
 * The plaintext is JSON of `{ v: value, exp: epochMs | null }`: the absolute
 * expiry travels with the value because backends cannot report a record's
 * remaining TTL, and re-encryption must not extend or drop it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { checkBatchOptions } from '../batch/options.js'
import { runBatch } from '../batch/run-batch.js'
import type { ReencryptReport } from '../batch/types.js'
import { LightroomConfigError, StoreRecordError } from '../errors.js'
import { keyPrefix, storeChannel, traced } from '../diagnostics/channels.js'
import { importKeys, KEY_ID, type ImportedKey } from './keys.js'
import { kEncryptsAtRest } from './types.js'
import type { EncryptedStoreOptions, StoreBackend, StoredRead, StoredValue, TokenStore } from './types.js'

export { generateEncryptionKey, parseEncryptionKeys } from './keys.js'

const VERSION = 'v1'
const CIPHER = 'aes-256-gcm'
const IV_BYTES = 12
const TAG_BYTES = 16
const BACKEND_METHODS = ['get', 'set', 'compareAndSet', 'delete', 'compareAndDelete', 'tryLock', 'scan'] as const

interface Envelope {
  keyId: string
  iv: Buffer
  ciphertext: Buffer
  tag: Buffer
}

export function encryptedStore (backend: StoreBackend, options: EncryptedStoreOptions): TokenStore {
  checkBackend(backend)
  const keys = importKeys(options?.keys)
  // importKeys guarantees at least one key.
  const current = keys[0] as ImportedKey
  const byId = new Map(keys.map((key) => [key.id, key]))
  const cacheSize = checkCacheSize(options?.cacheSize)
  // Decrypted values by record key, valid only while the backend still returns the very envelope
  // they came from: every request reads the session and the token set, and skipping AES-GCM and
  // JSON.parse for an unchanged record is most of this package's per-request cost. The values stay
  // in this process's memory (where they are used anyway); nothing unencrypted leaves it.
  const decrypted = new Map<string, StoredValue<unknown>>()

  function remember (key: string, stored: StoredValue<unknown>): void {
    if (cacheSize === 0) return
    if (decrypted.size >= cacheSize) decrypted.delete(decrypted.keys().next().value as string)
    decrypted.set(key, stored)
  }

  function seal (recordKey: string, plaintext: string | Buffer): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv(CIPHER, current.secret, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(Buffer.from(recordKey, 'utf8'))
    const ciphertext = typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext)
    // GCM is a stream mode: final() emits no bytes, it only computes the tag.
    cipher.final()
    // join() builds one flat string; a template literal would leave V8 a rope
    // of pieces, costing memory per stored record and a flatten on each read.
    return [VERSION, current.id, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
  }

  /** Authenticated plaintext of a parsed envelope; the caller has checked the key id is held. */
  function open (recordKey: string, envelope: Envelope, key: ImportedKey): Buffer {
    const decipher = createDecipheriv(CIPHER, key.secret, envelope.iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.from(recordKey, 'utf8'))
    decipher.setAuthTag(envelope.tag)
    const plaintext = decipher.update(envelope.ciphertext)
    try {
      decipher.final()
    } catch {
      // Tampered, truncated, or moved here from another record's key.
      throw new StoreRecordError(recordKey, 'auth-failed')
    }
    return plaintext
  }

  function keyFor (recordKey: string, envelope: Envelope): ImportedKey {
    const key = byId.get(envelope.keyId)
    if (key === undefined) throw new StoreRecordError(recordKey, 'unknown-key')
    return key
  }

  /** The value of a raw envelope read from the backend, decrypted unless the cache holds this very revision. */
  function decode (key: string, raw: string | undefined): StoredValue<unknown> | undefined {
    if (raw === undefined) {
      decrypted.delete(key)
      return undefined
    }
    const hit = decrypted.get(key)
    if (hit !== undefined && hit.revision === raw) return hit
    let value: unknown
    let envelope: Envelope
    try {
      envelope = parseEnvelope(key, raw)
      value = unwrap(key, open(key, envelope, keyFor(key, envelope))).v
    } catch (error) {
      // The caller may remove the unreadable record, but only while it is still this one.
      if (error instanceof StoreRecordError) throw error.withRevision(raw)
      /* c8 ignore next */
      throw error
    }
    // Frozen: one object is handed to every reader of this revision, so none may change it.
    const stored: StoredValue<unknown> = Object.freeze({ value: freezeShallow(value), revision: raw, staleKey: envelope.keyId !== current.id })
    remember(key, stored)
    return stored
  }

  function wrap (value: unknown, ttlMs: number | undefined): string {
    checkTtl(ttlMs)
    const type = typeof value
    if (type === 'undefined' || type === 'function' || type === 'symbol') {
      throw new TypeError(`encryptedStore: a ${type} value cannot be stored as JSON`)
    }
    return JSON.stringify({ v: value, exp: ttlMs === undefined ? null : Date.now() + ttlMs })
  }

  return {
    [kEncryptsAtRest]: true,
    backend,

    async get<T> (key: string): Promise<StoredValue<T> | undefined> {
      const raw = await traced(storeChannel, { operation: 'get', keyPrefix: keyPrefix(key) }, () => backend.get(key))
      return decode(key, raw) as StoredValue<T> | undefined
    },

    async getMany (keys) {
      const raws = await traced(storeChannel, { operation: 'getMany', keyPrefix: keys.map(keyPrefix).join(',') }, async () =>
        backend.getMany !== undefined ? await backend.getMany(keys) : await Promise.all(keys.map(async (key) => await backend.get(key))))
      return keys.map((key, i): StoredRead<unknown> => {
        try {
          return { readable: true, stored: decode(key, raws[i]) }
        } catch (error) {
          // Only an unreadable record is this key's own outcome; anything else would be our bug.
          /* c8 ignore next */
          if (!(error instanceof StoreRecordError)) throw error
          return { readable: false, error }
        }
      })
    },

    peek<T> (key: string): StoredValue<T> | undefined {
      if (backend.getSync === undefined) return undefined
      const hit = decrypted.get(key)
      if (hit === undefined) return undefined
      return backend.getSync(key) === hit.revision ? hit as StoredValue<T> : undefined
    },

    async set<T> (key: string, value: T, ttlMs?: number) {
      decrypted.delete(key)
      const envelope = seal(key, wrap(value, ttlMs))
      await traced(storeChannel, { operation: 'set', keyPrefix: keyPrefix(key) }, () => backend.set(key, envelope, ttlMs))
    },

    async compareAndSet<T> (key: string, revision: string | undefined, value: T, ttlMs?: number) {
      decrypted.delete(key)
      const envelope = seal(key, wrap(value, ttlMs))
      return await traced(storeChannel, { operation: 'compareAndSet', keyPrefix: keyPrefix(key) }, () => backend.compareAndSet(key, revision, envelope, ttlMs))
    },

    async delete (key) {
      decrypted.delete(key)
      await traced(storeChannel, { operation: 'delete', keyPrefix: keyPrefix(key) }, () => backend.delete(key))
    },

    async compareAndDelete (key, revision) {
      decrypted.delete(key)
      return await traced(storeChannel, { operation: 'compareAndDelete', keyPrefix: keyPrefix(key) }, () => backend.compareAndDelete(key, revision))
    },

    async tryLock (name, ttlMs) {
      return await traced(storeChannel, { operation: 'tryLock', keyPrefix: keyPrefix(name) }, () => backend.tryLock(name, ttlMs))
    },

    async reencryptAll (prefixes = '', options) {
      const batch = checkBatchOptions<ReencryptReport>(options, [])
      const report: ReencryptReport = { scanned: 0, reencrypted: 0, failed: 0, completed: false, aborted: false }
      async function reencryptOne (key: string): Promise<void> {
        report.scanned++
        const raw = await backend.get(key)
        if (raw === undefined) return // deleted since the scan listed it
        let plaintext: Buffer
        let exp: number | null
        try {
          const envelope = parseEnvelope(key, raw)
          // Skipping current-key records without decrypting them is what makes a rerun cheap.
          if (envelope.keyId === current.id) return
          plaintext = open(key, envelope, keyFor(key, envelope))
          exp = unwrap(key, plaintext).exp
        } catch (err) {
          // Only an unreadable record is counted and skipped; anything else would be our bug.
          /* c8 ignore next */
          if (!(err instanceof StoreRecordError)) throw err
          report.failed++
          return
        }
        let ttlMs: number | undefined
        if (exp !== null) {
          ttlMs = exp - Date.now()
          if (ttlMs <= 0) return // about to expire anyway: not worth a write
        }
        // The same plaintext (value and absolute expiry) under the current key;
        // if a concurrent writer got there first, its record is already current.
        if (await backend.compareAndSet(key, raw, seal(key, plaintext), ttlMs)) report.reencrypted++
      }
      const keys = scanAll(backend, typeof prefixes === 'string' ? [prefixes] : prefixes)
      return await runBatch({ name: 'reencryptAll', keys, report, each: reencryptOne, ...batch })
    }
  }
}

/**
 * Splits and strictly decodes an envelope. Buffer's base64 decoder skips
 * characters it does not know, so each part is re-encoded and compared: a
 * damaged record is reported as malformed instead of reaching GCM as
 * something else.
 */
function parseEnvelope (recordKey: string, raw: string): Envelope {
  const parts = raw.split('.')
  if (parts.length !== 5 || parts[0] !== VERSION) throw new StoreRecordError(recordKey, 'malformed')
  const keyId = parts[1] as string
  const iv = strictBase64url(parts[2] as string)
  const ciphertext = strictBase64url(parts[3] as string)
  const tag = strictBase64url(parts[4] as string)
  if (!KEY_ID.test(keyId) || iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES ||
    ciphertext === undefined || ciphertext.length === 0) {
    throw new StoreRecordError(recordKey, 'malformed')
  }
  return { keyId, iv, ciphertext, tag }
}

function strictBase64url (text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64url')
  return bytes.toString('base64url') === text ? bytes : undefined
}

function unwrap (recordKey: string, plaintext: Buffer): { v: unknown, exp: number | null } {
  let parsed: unknown
  try {
    parsed = JSON.parse(plaintext.toString('utf8'))
  } catch {
    throw new StoreRecordError(recordKey, 'bad-json')
  }
  // Authentic but not our wrapper: only a bug of ours could write that, and
  // it is still not a value we can hand out.
  if (typeof parsed !== 'object' || parsed === null || !('v' in parsed) || !('exp' in parsed) ||
    (parsed.exp !== null && typeof parsed.exp !== 'number')) {
    throw new StoreRecordError(recordKey, 'bad-json')
  }
  return parsed as { v: unknown, exp: number | null }
}

function checkBackend (backend: unknown): void {
  if (typeof backend !== 'object' || backend === null) {
    throw new LightroomConfigError('backend', 'must be a store backend (memoryBackend(), redisBackend(), ...)')
  }
  for (const method of BACKEND_METHODS) {
    if (typeof (backend as Record<string, unknown>)[method] !== 'function') {
      throw new LightroomConfigError('backend', `must implement ${method}() (see StoreBackend)`)
    }
  }
  const { getMany } = backend as Record<string, unknown>
  if (getMany !== undefined && typeof getMany !== 'function') {
    throw new LightroomConfigError('backend', 'getMany, when present, must be a function (see StoreBackend)')
  }
}

function checkTtl (ttlMs: number | undefined): void {
  if (ttlMs === undefined) return
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError('encryptedStore: ttlMs must be a positive finite number of milliseconds')
  }
}

function freezeShallow<T> (value: T): T {
  return value !== null && typeof value === 'object' ? Object.freeze(value) : value
}

const DEFAULT_CACHE_SIZE = 10_000

function checkCacheSize (value: unknown): number {
  if (value === undefined) return DEFAULT_CACHE_SIZE
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new LightroomConfigError('cacheSize', 'must be a whole number of records, 0 to disable the cache')
  }
  return value
}

async function * scanAll (backend: StoreBackend, prefixes: readonly string[]): AsyncIterable<string> {
  for (const prefix of prefixes) yield * backend.scan(prefix)
}
