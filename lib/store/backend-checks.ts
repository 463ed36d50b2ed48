/**
 * The argument and option rules every networked backend shares, so Redis and PostgreSQL refuse the
 * same bad input with the same words.
 */
import { LightroomConfigError } from '../errors.js'

/** Record keys starting with this are refused: lock names live there. */
export const LOCK_NAMESPACE = 'lock:'

export function checkRecordKey (backend: string, key: string): void {
  if (typeof key !== 'string') throw new TypeError(`${backend}: keys must be strings`)
  if (key.startsWith(LOCK_NAMESPACE)) throw new RangeError(`${backend}: keys starting with "${LOCK_NAMESPACE}" are reserved for locks`)
}

export function checkLockName (backend: string, name: string): void {
  if (typeof name !== 'string' || name === '') throw new TypeError(`${backend}: a lock needs a non-empty name`)
}

export function checkScanPrefix (backend: string, prefix: string): void {
  if (typeof prefix !== 'string') throw new TypeError(`${backend}: scan() needs a string prefix`)
}

/**
 * Whole milliseconds, rounded up so a short TTL never becomes none. As in the memory backend, a
 * zero, negative or non-finite TTL is a caller bug, not "forever".
 */
export function ttlFor (backend: string, ttlMs: number | undefined): number | undefined {
  if (ttlMs === undefined) return undefined
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${backend}: ttlMs must be a positive finite number of milliseconds`)
  }
  return Math.ceil(ttlMs)
}

/** A lock without an expiry would outlive a crashed holder for ever. */
export function lockTtlFor (backend: string, ttlMs: number): number {
  const ms = ttlFor(backend, ttlMs)
  if (ms === undefined) throw new RangeError(`${backend}: a lock needs a ttlMs`)
  return ms
}

export function operationTimeoutOption (value: number | undefined): number {
  const ms = value ?? 1000
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new LightroomConfigError('operationTimeoutMs', 'must be a positive number of milliseconds')
  }
  return ms
}

export function localCacheOption (value: number | undefined): number {
  const ms = value ?? 1000
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new LightroomConfigError('localCacheMs', 'must be a number of milliseconds, 0 to disable')
  }
  return ms
}

export function messageOf (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
