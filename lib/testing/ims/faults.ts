/** The mock IMS's fault queue: one queue per endpoint. */
import { FaultQueue, checkDelay, checkStatus } from '../shared/faults.js'
import type { MockImsFault, MockImsFaultTarget } from './types.js'

export function imsFaultQueue (): FaultQueue<MockImsFaultTarget, MockImsFault> {
  return new FaultQueue(checkImsFault)
}

function checkImsFault (fault: MockImsFault): void {
  // An oauthError fault's status is optional: undefined picks the error's usual one.
  if ('status' in fault && fault.status !== undefined) checkStatus(fault.status)
  if ('delayMs' in fault) checkDelay(fault.delayMs)
}
