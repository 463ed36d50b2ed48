/**
 * The marks a refresh writes into the user's record before it spends the refresh token, and what an
 * instance makes of another's mark.
 *
 * The danger they guard against: an instance refreshes (IMS rotates the refresh token), cannot store
 * the result because the store is unreachable, and its lock runs out meanwhile. Another instance then
 * finds the old record, spends the rotated-away token, gets `invalid_grant`, and signs the user out,
 * although the first instance holds the tokens that work and is about to write them.
 *
 * So: a mark left by another instance's refresh, found under the lock, means "its result may exist".
 * Its refresh token is not spent until the mark has been seen for a grace period (twice the lock's
 * TTL, in real time: the first instance retries its write far more often than that), during which
 * the finder waits as it would for a lock holder. A mark of a refresh that really died (its process
 * was killed) costs one grace period, once.
 */
import { randomBytes } from 'node:crypto'
import type { RefreshIntent } from './token-set.js'

const MAX_TRACKED = 10_000

export class RefreshIntents {
  /** Marks of this process start with it; its own are never waited for (it knows what it holds). */
  readonly #instance = `${randomBytes(9).toString('base64url')}.`
  readonly #graceMs: number
  readonly #firstSeen = new Map<string, number>()
  #counter = 0

  constructor (graceMs: number) {
    this.#graceMs = graceMs
  }

  /** A new mark for a refresh about to spend a refresh token. */
  next (now: number): RefreshIntent {
    this.#counter++
    return { id: `${this.#instance}${this.#counter}`, at: now }
  }

  /** True while another instance's mark is too recent to spend the refresh token it guards. */
  holdsBack (intent: RefreshIntent | undefined): boolean {
    if (intent === undefined || intent.id.startsWith(this.#instance)) return false
    // Real time, not the injectable clock: this is about how long a real write takes to land.
    const now = Date.now()
    const first = this.#firstSeen.get(intent.id)
    if (first !== undefined) return now - first < this.#graceMs
    // Bounded: a fleet that restarts often must not grow this for ever.
    if (this.#firstSeen.size >= MAX_TRACKED) this.#firstSeen.clear()
    this.#firstSeen.set(intent.id, now)
    return this.#graceMs > 0
  }
}
