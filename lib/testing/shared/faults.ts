/**
 * Queued faults, per target (an endpoint, or a wildcard such as the Lightroom
 * mock's '*'). Each mock says which faults are valid; the queue checks them
 * when they are added, so a bad fault fails the test's fail() call rather than
 * a request later.
 */

interface QueuedFault<Fault> {
  fault: Fault
  remaining: number
}

export class FaultQueue<Target, Fault extends object> {
  readonly #queues = new Map<Target, Array<QueuedFault<Fault>>>()
  readonly #check: (fault: Fault) => void

  /** `check` throws a TypeError for a fault the mock cannot play. */
  constructor (check: (fault: Fault) => void) {
    this.#check = check
  }

  add (target: Target, fault: Fault, times: number): void {
    if (!Number.isInteger(times) || times < 1) throw new TypeError('fail(): `times` must be a positive integer')
    this.#check(fault)
    const queue = this.#queues.get(target) ?? []
    queue.push({ fault: { ...fault }, remaining: times })
    this.#queues.set(target, queue)
  }

  /** The fault for the next request, from the first of these targets that has one queued. */
  take (...targets: Target[]): Fault | undefined {
    for (const target of targets) {
      const queue = this.#queues.get(target)
      const head = queue?.[0]
      if (queue === undefined || head === undefined) continue
      head.remaining -= 1
      if (head.remaining === 0) queue.shift()
      return head.fault
    }
    return undefined
  }

  clear (): void {
    this.#queues.clear()
  }
}

/** For a mock's fault check: `status` must be an HTTP status code. */
export function checkStatus (status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new TypeError('fail(): `status` must be an HTTP status code')
}

/** For a mock's fault check: `delayMs` must be a non-negative number. */
export function checkDelay (delayMs: number): void {
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new TypeError('fail(): `delayMs` must be a non-negative number')
}
