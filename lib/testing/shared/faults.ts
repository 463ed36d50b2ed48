/**
 * Queued faults per endpoint, and the delays they cause. Delays are tracked so
 * that close() can cut them short: a test must never hang on a mock it closed.
 */
import type { MockImsEndpoint, MockImsFault } from '../ims/types.js'

interface QueuedFault {
  fault: MockImsFault
  remaining: number
}

export class FaultQueue {
  readonly #queues = new Map<MockImsEndpoint, QueuedFault[]>()

  add (endpoint: MockImsEndpoint, fault: MockImsFault, times: number): void {
    if (!Number.isInteger(times) || times < 1) throw new TypeError('fail(): `times` must be a positive integer')
    checkFault(fault)
    const queue = this.#queues.get(endpoint) ?? []
    queue.push({ fault: { ...fault }, remaining: times })
    this.#queues.set(endpoint, queue)
  }

  /** The fault for the next request to this endpoint, if one is queued. */
  take (endpoint: MockImsEndpoint): MockImsFault | undefined {
    const queue = this.#queues.get(endpoint)
    const head = queue?.[0]
    if (!queue || !head) return undefined
    head.remaining -= 1
    if (head.remaining === 0) queue.shift()
    return head.fault
  }

  clear (): void {
    this.#queues.clear()
  }
}

function checkFault (fault: MockImsFault): void {
  const status = 'status' in fault ? fault.status : undefined
  if (status !== undefined && (!Number.isInteger(status) || status < 100 || status > 599)) {
    throw new TypeError('fail(): `status` must be an HTTP status code')
  }
  if ('delayMs' in fault && (!Number.isFinite(fault.delayMs) || fault.delayMs < 0)) {
    throw new TypeError('fail(): `delayMs` must be a non-negative number')
  }
}

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
