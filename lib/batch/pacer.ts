/**
 * Spaces calls evenly: at most `perSecond` starts per second, one every 1/perSecond s, never a burst
 * at each second boundary (a throttling IMS counts over short windows too). Slots are handed out on
 * an absolute timeline, so a timer that fires late does not slow the average rate down; and a pause
 * (every worker busy) banks no credit for a burst afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises'

export interface Pacer {
  /** Resolves true when the caller may start; false when the signal aborted the wait. */
  take (signal?: AbortSignal): Promise<boolean>
}

export function pacer (perSecond: number | undefined): Pacer {
  if (perSecond === undefined) return { take: async (signal) => signal?.aborted !== true }
  const intervalMs = 1000 / perSecond
  let nextSlot = -Infinity
  return {
    async take (signal) {
      if (signal?.aborted === true) return false
      const now = performance.now()
      const slot = Math.max(now, nextSlot)
      nextSlot = slot + intervalMs
      const waitMs = slot - now
      // Below a millisecond, a timer would only add its own delay.
      if (waitMs < 1) return true
      try {
        await sleep(waitMs, undefined, { signal })
        return true
      } catch {
        // Aborted while waiting: the slot goes unused, which only makes the run slower, never faster.
        return false
      }
    }
  }
}
