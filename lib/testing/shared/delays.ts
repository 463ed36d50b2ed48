/**
 * The delays that faults cause. They are tracked so that close() can cut them
 * short: a test must never hang on a mock it closed.
 */

/** Timers that resolve to true when they ran out, or false when cancelled by close(). */
export class Delays {
  readonly #pending = new Map<NodeJS.Timeout, (ran: boolean) => void>()

  async wait (ms: number): Promise<boolean> {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(timer)
        resolve(true)
      }, ms)
      this.#pending.set(timer, resolve)
    })
  }

  cancelAll (): void {
    for (const [timer, resolve] of this.#pending) {
      clearTimeout(timer)
      resolve(false)
    }
    this.#pending.clear()
  }
}
