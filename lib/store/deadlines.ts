/**
 * Bounds every call a networked backend makes (Redis, PostgreSQL) by one timeout, with one coarse
 * timer for all calls in flight instead of a timer per call: at tens of thousands of reads a
 * second, a setTimeout/clearTimeout pair per read was a visible share of the profile. A call then
 * times out between timeoutMs and timeoutMs plus one tick.
 */

export interface DeadlineErrors {
  /** The error a call that got no answer in time rejects with. */
  timeout (operation: string): Error
  /** Whatever the call rejected with, as the backend's own error type. */
  failed (operation: string, error: unknown): Error
}

export interface Deadlines {
  /**
   * Runs `work`, settling with whichever comes first: its outcome or the deadline. A late outcome
   * is dropped (a late rejection too, never "unhandled"); onExpire lets the caller abandon what
   * the call was holding.
   */
  run<T> (operation: string, work: () => Promise<T>, onExpire?: () => void): Promise<T>
}

interface Pending {
  deadline: number
  operation: string
  fail: (error: Error) => void
  onExpire: (() => void) | undefined
}

export function deadlines (timeoutMs: number, errors: DeadlineErrors): Deadlines {
  const inFlight = new Set<Pending>()
  const tickMs = Math.max(5, Math.min(100, timeoutMs / 4))
  let ticker: NodeJS.Timeout | undefined

  function expireOverdue (): void {
    const now = Date.now()
    for (const entry of inFlight) {
      if (entry.deadline > now) continue
      inFlight.delete(entry)
      entry.onExpire?.()
      entry.fail(errors.timeout(entry.operation))
    }
    if (inFlight.size === 0) {
      clearInterval(ticker)
      ticker = undefined
    }
  }

  return {
    async run (operation, work, onExpire) {
      return await new Promise((resolve, reject) => {
        const entry: Pending = { deadline: Date.now() + timeoutMs, operation, fail: reject, onExpire }
        inFlight.add(entry)
        if (ticker === undefined) {
          ticker = setInterval(expireOverdue, tickMs)
          ticker.unref()
        }
        work().then((value) => {
          if (inFlight.delete(entry)) resolve(value)
        }, (error: unknown) => {
          if (inFlight.delete(entry)) reject(errors.failed(operation, error))
        })
      })
    }
  }
}
