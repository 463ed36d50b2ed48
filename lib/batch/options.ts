/**
 * Checks a batch job's options when it is called: a typo (`concurency`) or a wrong value must fail
 * the nightly job at once with the option's name, not run it with defaults for hours.
 */
import { LightroomConfigError } from '../errors.js'
import type { BatchOptions } from './types.js'

export const DEFAULT_CONCURRENCY = 4
const MAX_CONCURRENCY = 1000

export interface CheckedBatchOptions<Report> {
  concurrency: number
  signal: AbortSignal | undefined
  onProgress: ((report: Report) => void) | undefined
}

/** `known`: the job's own option names besides the shared ones, so an unknown name is refused. */
export function checkBatchOptions<Report> (options: unknown, known: readonly string[]): CheckedBatchOptions<Report> {
  if (options === undefined) return { concurrency: DEFAULT_CONCURRENCY, signal: undefined, onProgress: undefined }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new LightroomConfigError('options', 'must be an object of batch options (concurrency, signal, onProgress, ...)')
  }
  for (const name of Object.keys(options)) {
    if (!['concurrency', 'signal', 'onProgress', ...known].includes(name)) throw new LightroomConfigError(name, 'is not an option of this job')
  }
  const { concurrency = DEFAULT_CONCURRENCY, signal, onProgress } = options as BatchOptions<Report>
  if (typeof concurrency !== 'number' || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new LightroomConfigError('concurrency', `must be a whole number from 1 to ${MAX_CONCURRENCY}`)
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new LightroomConfigError('signal', 'must be an AbortSignal')
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new LightroomConfigError('onProgress', 'must be a function')
  return { concurrency, signal, onProgress }
}

/** A rate in calls per second: undefined (no cap) or a positive finite number. */
export function checkRate (name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new LightroomConfigError(name, 'must be a positive number of calls per second (leave it out for no cap)')
  }
  return value
}
