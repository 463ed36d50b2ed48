/**
 * How many of this backend's calls hold a pooled connection at once (the pool's `max`), and who
 * goes next when all are taken: urgent calls first. Lock renewals and writes are urgent; reads are
 * not. Without this, a burst of hundreds of reads queues in pg's FIFO in front of the lock holder's
 * lease renewal, the lease runs out mid-refresh, and a second process refreshes with the same
 * refresh token.
 */

export interface Gate {
  /** `admitted` runs once a slot is this caller's; the returned function withdraws a caller still queued. */
  enter (urgent: boolean, admitted: () => void): () => void
  /** Frees a slot, handing it straight to the next caller in line. */
  leave (): void
}

export function gate (capacity: number): Gate {
  let inUse = 0
  const urgent: Array<() => void> = []
  const normal: Array<() => void> = []
  return {
    enter (isUrgent, admitted) {
      if (inUse < capacity) {
        inUse++
        admitted()
        return () => {}
      }
      const queue = isUrgent ? urgent : normal
      queue.push(admitted)
      return () => {
        const index = queue.indexOf(admitted)
        if (index !== -1) queue.splice(index, 1)
      }
    },
    leave () {
      const next = urgent.shift() ?? normal.shift()
      if (next === undefined) inUse--
      else next()
    }
  }
}
