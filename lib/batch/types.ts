/** What the batch jobs (renewExpiring, reencryptAll) take and report, beside their own counts. */

/** How a run ended; an incomplete run rejects with LightroomBatchError instead, its report attached. */
export interface BatchOutcome {
  /** Every record was visited. */
  completed: boolean
  /** The signal stopped it: users or records not yet started were left for the next run. */
  aborted: boolean
}

export interface BatchOptions<Report> {
  /** Records in flight at once (default 4, at most 1000). */
  concurrency?: number
  /** Stops starting new records; the ones in flight finish, then the run resolves with `aborted: true`. */
  signal?: AbortSignal
  /** A copy of the running counts, every quarter of a second while the run lasts and once at its end. */
  onProgress?: (report: Report) => void
}

export interface ReencryptReport extends BatchOutcome {
  scanned: number
  reencrypted: number
  failed: number
}
