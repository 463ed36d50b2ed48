/**
 * Queued faults of the mock Lightroom, per endpoint plus a '*' queue that any
 * endpoint draws from once its own queue is empty.
 */
import type { MockLightroomEndpoint, MockLightroomFault } from './types.js'

type Target = MockLightroomEndpoint | '*'

export class LightroomFaults {
  readonly #queues = new Map<Target, Array<{ fault: MockLightroomFault, remaining: number }>>()

  add (target: Target, fault: MockLightroomFault, times: number): void {
    if (!Number.isInteger(times) || times < 1) throw new TypeError('fail(): `times` must be a positive integer')
    if ('status' in fault && (!Number.isInteger(fault.status) || fault.status < 100 || fault.status > 599)) {
      throw new TypeError('fail(): `status` must be an HTTP status code')
    }
    if ('delayMs' in fault && (!Number.isFinite(fault.delayMs) || fault.delayMs < 0)) {
      throw new TypeError('fail(): `delayMs` must be a non-negative number')
    }
    const queue = this.#queues.get(target) ?? []
    queue.push({ fault: { ...fault }, remaining: times })
    this.#queues.set(target, queue)
  }

  take (endpoint: MockLightroomEndpoint): MockLightroomFault | undefined {
    return this.#takeFrom(endpoint) ?? this.#takeFrom('*')
  }

  clear (): void {
    this.#queues.clear()
  }

  #takeFrom (target: Target): MockLightroomFault | undefined {
    const queue = this.#queues.get(target)
    const head = queue?.[0]
    if (queue === undefined || head === undefined) return undefined
    head.remaining -= 1
    if (head.remaining === 0) queue.shift()
    return head.fault
  }
}
