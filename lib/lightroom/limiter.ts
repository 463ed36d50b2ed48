/**
 * A cap on concurrent Lightroom calls for the whole app: Adobe may revoke the API key of an app that
 * hammers the service, so every client of one registration draws from one limiter. A slot is held
 * for an attempt (its whole body, for streams), never while waiting to retry.
 */
export class ConcurrencyLimit {
  readonly max: number
  #active = 0
  readonly #waiting: Array<() => void> = []

  constructor (max: number) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('ConcurrencyLimit: `max` must be a positive integer')
    this.max = max
  }

  get active (): number {
    return this.#active
  }

  get queued (): number {
    return this.#waiting.length
  }

  /** Resolves with a release function, to call exactly once (later calls do nothing). */
  async acquire (signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted()
    if (this.#active < this.max) {
      this.#active++
      return this.#releaser()
    }
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = (): void => {
        const index = this.#waiting.indexOf(grant)
        if (index !== -1) this.#waiting.splice(index, 1)
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(grant)
    })
    // The slot was handed over by a release: #active already counts it.
    return this.#releaser()
  }

  #releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.shift()
      if (next === undefined) this.#active--
      else next()
    }
  }
}
