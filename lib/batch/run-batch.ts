/**
 * Runs a job over a stream of keys with a fixed number of workers: memory stays flat (keys are
 * pulled one at a time from the scan, no per-key result is kept, only the counts), an abort stops
 * new keys while the ones in flight finish, and a failure stops the run without losing its counts.
 */
import type { FastifyBaseLogger } from 'fastify'
import { LightroomBatchError } from '../errors.js'
import type { BatchOutcome } from './types.js'
import type { CheckedBatchOptions } from './options.js'

/** Often enough for a progress bar, rare enough to cost nothing and never flood a log. */
export const PROGRESS_INTERVAL_MS = 250

export interface BatchJob<Key, Report extends BatchOutcome> extends CheckedBatchOptions<Report> {
  /** Named in the error and the log lines. */
  name: string
  keys: AsyncIterable<Key>
  /** The counts, updated by `each`; completed/aborted are set at the end. */
  report: Report
  /** One key's work. Throwing stops the whole run (a store that is down fails every key alike). */
  each: (key: Key) => Promise<void>
  /** Where a failing onProgress and the stopping failure are told; none: the caller logs. */
  log?: FastifyBaseLogger | undefined
}

export async function runBatch<Key, Report extends BatchOutcome> (job: BatchJob<Key, Report>): Promise<Report> {
  const { report, signal } = job
  const iterator = job.keys[Symbol.asyncIterator]()
  let failure: { error: unknown } | undefined
  let stoppedByAbort = false
  let progressFailed = false
  const progress = (): void => {
    if (job.onProgress === undefined) return
    try {
      job.onProgress({ ...report })
    } catch (error) {
      // The caller's callback failing is no reason to stop renewing: said once, then ignored.
      if (!progressFailed) job.log?.warn({ job: job.name, err: { message: (error as Error).message } }, 'lightroom-ims: onProgress threw; the run goes on')
      progressFailed = true
    }
  }
  const ticker = job.onProgress === undefined ? undefined : setInterval(progress, PROGRESS_INTERVAL_MS)
  ticker?.unref()

  const mayContinue = (): boolean => {
    if (failure !== undefined) return false
    if (signal?.aborted === true) stoppedByAbort = true
    return !stoppedByAbort
  }

  async function worker (): Promise<void> {
    while (mayContinue()) {
      let next: IteratorResult<Key>
      try {
        // Async generators queue concurrent next() calls: each worker gets a key of its own.
        next = await iterator.next()
      } catch (error) {
        failure ??= { error }
        return
      }
      if (next.done === true || !mayContinue()) return
      try {
        await job.each(next.value)
      } catch (error) {
        failure ??= { error }
        return
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: job.concurrency }, worker))
    // Stopped early: let the scan release what it holds (a cursor, a connection).
    if (failure !== undefined || stoppedByAbort) await iterator.return?.().catch(() => {})
  } finally {
    if (ticker !== undefined) clearInterval(ticker)
  }
  report.completed = failure === undefined && !stoppedByAbort
  report.aborted = failure === undefined && stoppedByAbort
  progress()
  if (failure !== undefined) {
    const error = new LightroomBatchError(job.name, { ...report }, failure.error)
    job.log?.error({ job: job.name, report, err: { code: (failure.error as { code?: unknown }).code, message: error.message } }, 'lightroom-ims: batch job stopped by a failure')
    throw error
  }
  return report
}
