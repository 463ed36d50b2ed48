/**
 * Whether Adobe IMS is worth asking right now, as the whole fleet knows it. After a refresh fails
 * for IMS's reasons (down, timing out, answering garbage), one short record in the shared store
 * says until when nobody asks again. Every instance reads it before a refresh call, so during an
 * outage the fleet as a whole makes one IMS attempt per cooldown, not one per process or per user.
 *
 * When the cooldown ends, one caller claims the next attempt (compare-and-set on the record) and the
 * others wait another cooldown for its verdict: a fleet coming back from an outage does not stampede
 * an IMS that is itself coming back. A success removes the record.
 */
import type { FastifyBaseLogger } from 'fastify'
import { imsUnavailable, type LightroomAuthError } from '../errors.js'
import type { StoredValue, TokenStore } from '../store/types.js'

export const IMS_HEALTH_KEY = 'ims-health'

interface Unhealthy {
  /** Epoch ms (the writing instance's clock) until which no instance asks IMS. */
  until: number
}

/** Whether to call IMS: 'clear' (nothing known against it), 'probe' (the first call after a cooldown), or 'wait'. */
export type ImsVerdict = 'clear' | 'probe' | 'wait'

/** The answer for an expired token while IMS is left alone after a failure. */
export function imsCoolingDown (): LightroomAuthError {
  return imsUnavailable('Adobe IMS failed a moment ago and the access token has expired; try again shortly')
}

/** The record outlives its cooldown, so the end of one is claimed by a single caller. */
const RECORD_LIFETIME_COOLDOWNS = 12

export class ImsHealth {
  readonly #store: TokenStore
  readonly #now: () => number
  readonly #cooldownMs: number
  readonly #log: FastifyBaseLogger
  /** This process's copy of the fleet's verdict: no store read per request during an outage. */
  #downUntil = 0

  constructor (store: TokenStore, now: () => number, cooldownMs: number, log: FastifyBaseLogger) {
    this.#store = store
    this.#now = now
    this.#cooldownMs = cooldownMs
    this.#log = log
  }

  /** True while this process already knows IMS failed a moment ago: no need to ask the store. */
  knownDown (): boolean {
    return this.#now() < this.#downUntil
  }

  /**
   * Asked right before a refresh call, under the user's refresh lock. A store that cannot be read
   * decides nothing: the refresh goes ahead (its own writes then meet the store's trouble).
   */
  async verdict (): Promise<ImsVerdict> {
    if (this.#cooldownMs <= 0) return 'clear'
    if (this.knownDown()) return 'wait'
    let stored: StoredValue<Unhealthy> | undefined
    try {
      stored = await this.#store.get<Unhealthy>(IMS_HEALTH_KEY)
    } catch {
      return 'clear'
    }
    const written = stored?.value?.until
    if (stored === undefined || typeof written !== 'number') return 'clear'
    // Written on another instance's clock: one running ahead must not hold the fleet back for longer
    // than one cooldown from now.
    const until = Math.min(written, this.#now() + this.#cooldownMs)
    if (this.#now() < until) {
      this.#downUntil = until
      return 'wait'
    }
    try {
      return await this.#store.compareAndSet(IMS_HEALTH_KEY, stored.revision, this.#record(), this.#lifetimeMs()) ? 'probe' : 'wait'
    } catch {
      return 'wait'
    }
  }

  /** IMS failed: nobody in the fleet asks again before the cooldown has passed. Awaited before the lock is released. */
  async failed (): Promise<void> {
    if (this.#cooldownMs <= 0) return
    const record = this.#record()
    this.#downUntil = record.until
    await this.#store.set(IMS_HEALTH_KEY, record, this.#lifetimeMs()).catch(() => {
      this.#log.warn('lightroom-ims: could not record the IMS failure in the store; other instances will find out by themselves')
    })
  }

  /** A call went through after an outage: everyone may ask again. */
  async recovered (): Promise<void> {
    this.#downUntil = 0
    await this.#store.delete(IMS_HEALTH_KEY).catch(() => {})
  }

  #record (): Unhealthy {
    return { until: this.#now() + this.#cooldownMs }
  }

  #lifetimeMs (): number {
    return this.#cooldownMs * RECORD_LIFETIME_COOLDOWNS
  }
}
