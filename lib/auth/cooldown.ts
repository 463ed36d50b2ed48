/**
 * Users with a deadline before which something must not happen again for them: the token manager
 * keeps one forced refresh per user per floor with it. (IMS's failure cooldown is fleet-wide and
 * lives in the store: ims-health.ts.)
 */
const MAX_USERS = 10_000

export class Cooldown {
  readonly #until = new Map<string, number>()
  readonly #now: () => number
  readonly #durationMs: number

  constructor (now: () => number, durationMs: number) {
    this.#now = now
    this.#durationMs = durationMs
  }

  start (userId: string): void {
    if (this.#durationMs <= 0) return
    // Bounded: users who never come back must not pile up here.
    if (this.#until.size >= MAX_USERS) {
      const now = this.#now()
      for (const [id, until] of this.#until) if (until <= now) this.#until.delete(id)
      if (this.#until.size >= MAX_USERS) this.#until.clear()
    }
    this.#until.set(userId, this.#now() + this.#durationMs)
  }

  /** True while the user's cooldown runs; an ended one is forgotten. */
  active (userId: string): boolean {
    const until = this.#until.get(userId)
    if (until === undefined) return false
    if (this.#now() < until) return true
    this.#until.delete(userId)
    return false
  }
}
