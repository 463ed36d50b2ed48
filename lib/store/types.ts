/**
 * The contract every storage backend implements. Backends hold opaque strings
 * only (the encrypted envelopes); they never see a token in plaintext.
 * One interface for memory and Redis, so the token manager has one code path.
 */
import type { BatchOptions, ReencryptReport } from '../batch/types.js'

import type { StoreRecordError } from '../errors.js'

export interface BackendLock {
  /** Random value proving ownership; only its owner may release or extend. */
  readonly owner: string
  /** Push the expiry out again while a slow refresh is still running. Resolves false when the lock was lost. */
  extend (ttlMs: number): Promise<boolean>
  /** Release if still owned; a no-op otherwise. */
  release (): Promise<void>
}

export interface StoreBackend {
  get (key: string): Promise<string | undefined>
  /**
   * Optional: several get()s in one round trip (Redis MGET, one SQL query), answers in the order of
   * `keys`. Without it, TokenStore.getMany runs the get()s in parallel.
   */
  getMany? (keys: readonly string[]): Promise<Array<string | undefined>>
  /**
   * Optional: the same as get, answered synchronously. Only an in-process backend can; it lets a
   * request whose session and tokens are unchanged skip every promise on its way to the token.
   */
  getSync? (key: string): string | undefined
  /** ttlMs: the record disappears after this long; undefined keeps it forever. */
  set (key: string, value: string, ttlMs?: number): Promise<void>
  /**
   * Atomically write `value` only when the current raw value is exactly
   * `expected` (undefined: only when absent). Resolves whether it wrote.
   */
  compareAndSet (key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean>
  delete (key: string): Promise<void>
  /** Atomically delete only when the current raw value is exactly `expected`. */
  compareAndDelete (key: string, expected: string): Promise<boolean>
  /** Try once to take the named lock; undefined when someone else holds it. */
  tryLock (name: string, ttlMs: number): Promise<BackendLock | undefined>
  /** Every key starting with prefix, in batches (SCAN, never KEYS, on Redis). */
  scan (prefix: string): AsyncIterable<string>
  /** Optional: release connections/timers. */
  close? (): Promise<void>
}

/** A decrypted value together with the raw envelope it came from, for compare-and-set. */
export interface StoredValue<T> {
  value: T
  /** Opaque: pass back to compareAndSet / compareAndDelete. */
  revision: string
  /** True when the record was encrypted with a key other than the current (first) one. */
  staleKey: boolean
}

export const kEncryptsAtRest: unique symbol = Symbol.for('fastify-lightroom-ims.encrypts-at-rest')

/**
 * One key's answer from TokenStore.getMany: the value (undefined when absent), or, for a record
 * that cannot be decrypted, the error get() would have thrown, so one bad record fails no other.
 */
export type StoredRead<T> =
  | { readonly readable: true, readonly stored: StoredValue<T> | undefined }
  | { readonly readable: false, readonly error: StoreRecordError }

/** What the plugin talks to: JSON values in, encrypted envelopes out to the backend. */
export interface TokenStore {
  readonly [kEncryptsAtRest]: true
  readonly backend: StoreBackend
  /** Throws StoreRecordError for a record that cannot be decrypted; backend errors pass through. */
  get<T> (key: string): Promise<StoredValue<T> | undefined>
  /**
   * get() for several keys at once (one round trip when the backend has getMany), in the order of
   * `keys`. An unreadable record is reported in its own slot; a backend error rejects the whole call.
   */
  getMany (keys: readonly string[]): Promise<Array<StoredRead<unknown>>>
  /**
   * The already-decrypted value when the backend answers synchronously and still holds the very
   * envelope it came from; undefined otherwise (then use get). Never decrypts, never throws.
   */
  peek<T> (key: string): StoredValue<T> | undefined
  set<T> (key: string, value: T, ttlMs?: number): Promise<void>
  /** revision undefined: write only when absent. */
  compareAndSet<T> (key: string, revision: string | undefined, value: T, ttlMs?: number): Promise<boolean>
  delete (key: string): Promise<void>
  compareAndDelete (key: string, revision: string): Promise<boolean>
  tryLock (name: string, ttlMs: number): Promise<BackendLock | undefined>
  /**
   * Rewrite every record under `prefix` (or each of several prefixes, totals added up) whose key is
   * not the current one. Resumable: already-current records are skipped. A backend failure rejects
   * with LightroomBatchError, whose `report` holds the counts so far.
   */
  reencryptAll (prefix?: string | readonly string[], options?: BatchOptions<ReencryptReport>): Promise<ReencryptReport>
}

export interface EncryptionKey {
  /** Short identifier stored in every envelope; letters, digits, `-` and `_`. */
  id: string
  /** 32 bytes: a Buffer/Uint8Array, or a base64 / base64url / 64-hex-char string. */
  key: string | Uint8Array
}

export interface EncryptedStoreOptions {
  /** The first key encrypts; every key decrypts (rotation). */
  keys: EncryptionKey[]
  /**
   * How many decrypted records to keep in this process, reused while the backend returns the same
   * envelope (default 10000; 0 disables). Saves an AES-GCM decryption and a JSON.parse per read.
   */
  cacheSize?: number
}
