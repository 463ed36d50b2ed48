/**
 * The mock Lightroom's fault queue: one queue per endpoint plus a '*' queue
 * that any endpoint draws from once its own queue is empty.
 */
import { FaultQueue, checkDelay, checkStatus } from '../shared/faults.js'
import type { MockLightroomEndpoint, MockLightroomFault } from './types.js'

export type LightroomFaultTarget = MockLightroomEndpoint | '*'

export function lightroomFaultQueue (): FaultQueue<LightroomFaultTarget, MockLightroomFault> {
  return new FaultQueue(checkLightroomFault)
}

function checkLightroomFault (fault: MockLightroomFault): void {
  // Unlike the IMS mock's, no Lightroom fault has an optional status: undefined is refused too.
  if ('status' in fault) checkStatus(fault.status)
  if ('delayMs' in fault) checkDelay(fault.delayMs)
}
