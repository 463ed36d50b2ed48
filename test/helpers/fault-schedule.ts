import type { MockIms, MockImsFault } from '../../lib/testing/index.js'
import type { Rng } from './prng.js'

/**
 * A deterministic schedule of faults for the mock IMS token endpoint: slot i is what the i-th token
 * call (counted by the mock, retries included) gets. Every block of 10 slots holds exactly
 * `faultsPer10` faults at seeded positions, so any prefix of the schedule fails within 2/n of the
 * intended rate, whatever the interleaving of concurrent callers. Which *user* meets a given slot
 * depends on scheduling; the tests assert invariants that hold for every assignment.
 *
 * The mock's queue only holds faults, so a slot that must pass is queued as `{ delayMs: 0 }`:
 * answered normally after one timer tick.
 */
export class TokenFaultSchedule {
  readonly #ims: MockIms
  readonly #rng: Rng
  readonly #kinds: readonly MockImsFault[]
  readonly #faultsPer10: number
  readonly #slots: Array<MockImsFault | undefined> = []
  #cursor = 0
  #armedAt = 0
  #armed = 0
  #mode: 'schedule' | 'outage' | 'off' = 'off'
  /** Token calls seen while armed, and how many of them were given a fault. */
  readonly stats = { calls: 0, faulted: 0, scheduledCalls: 0, scheduledFaults: 0 }

  constructor (ims: MockIms, rng: Rng, options: { kinds: readonly MockImsFault[], faultsPer10: number }) {
    if (options.faultsPer10 < 0 || options.faultsPer10 > 10) throw new RangeError('faultsPer10 must be 0..10')
    this.#ims = ims
    this.#rng = rng
    this.#kinds = options.kinds
    this.#faultsPer10 = options.faultsPer10
  }

  #slot (index: number): MockImsFault | undefined {
    while (this.#slots.length <= index) {
      const block: Array<MockImsFault | undefined> = Array.from({ length: 10 }, () => undefined)
      let placed = 0
      while (placed < this.#faultsPer10) {
        const at = this.#rng.int(0, 10)
        if (block[at] !== undefined) continue
        block[at] = this.#rng.pick(this.#kinds)
        placed++
      }
      this.#slots.push(...block)
    }
    return this.#slots[index]
  }

  /** Queues the next `slots` scheduled slots (runs of equal slots in one queue entry). */
  arm (slots: number): void {
    this.#begin('schedule', slots)
    let index = this.#cursor
    const end = this.#cursor + slots
    while (index < end) {
      const slot = this.#slot(index)
      let run = 1
      while (index + run < end && this.#slot(index + run) === slot) run++
      this.#ims.fail('token', slot ?? { delayMs: 0 }, run)
      index += run
    }
  }

  /** Every token call fails, cycling through the fault kinds, until settle(). */
  armOutage (slots: number): void {
    this.#begin('outage', slots)
    for (let i = 0; i < slots; i++) this.#ims.fail('token', this.#kinds[i % this.#kinds.length]!, 1)
  }

  #begin (mode: 'schedule' | 'outage', slots: number): void {
    if (this.#mode !== 'off') throw new Error('settle() the previous arm first')
    this.#ims.clearFaults()
    this.#mode = mode
    this.#armed = slots
    this.#armedAt = this.#ims.count('token')
  }

  /** Accounts for the token calls made since arm(), and removes whatever was not used. */
  settle (): void {
    const consumed = this.#ims.count('token') - this.#armedAt
    if (consumed > this.#armed) throw new Error(`${consumed} token calls, but only ${this.#armed} slots were armed: arm more`)
    this.stats.calls += consumed
    if (this.#mode === 'outage') {
      this.stats.faulted += consumed
    } else {
      let faults = 0
      for (let i = this.#cursor; i < this.#cursor + consumed; i++) if (this.#slot(i) !== undefined) faults++
      this.#cursor += consumed
      this.stats.faulted += faults
      this.stats.scheduledCalls += consumed
      this.stats.scheduledFaults += faults
    }
    this.#ims.clearFaults()
    this.#mode = 'off'
  }
}
