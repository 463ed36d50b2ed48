/**
 * The periodic job that keeps idle users signed in: every grant whose refresh token is getting old
 * is refreshed (IMS then issues a new refresh token), before IMS's 14-day limit ends it. Built for a
 * nightly run over many users on every instance at once: a few users in flight, IMS calls paced,
 * each user renewed under their refresh lock by whichever instance gets it first, never twice.
 */
import type { FastifyBaseLogger } from 'fastify'
import { checkBatchOptions, checkRate } from '../batch/options.js'
import { pacer } from '../batch/pacer.js'
import { runBatch } from '../batch/run-batch.js'
import { ErrorCodes, LightroomConfigError, LightroomError } from '../errors.js'
import type { TokenStore } from '../store/types.js'
import type { TokenManager } from './token-manager.js'
import { TOKEN_PREFIX } from './token-records.js'
import type { RenewOptions, RenewReport } from './token-types.js'

export async function renewExpiring (tokens: TokenManager, store: TokenStore, now: () => number, defaultOlderThanMs: number, log: FastifyBaseLogger, options?: RenewOptions): Promise<RenewReport> {
  const batch = checkBatchOptions<RenewReport>(options, ['olderThanSeconds', 'maxPerSecond'])
  const olderThanMs = checkAge(options?.olderThanSeconds, defaultOlderThanMs)
  const pace = pacer(checkRate('maxPerSecond', options?.maxPerSecond))
  const report: RenewReport = { scanned: 0, renewed: 0, busy: 0, failed: 0, loggedOut: 0, completed: false, aborted: false }
  log.info({ olderThanSeconds: olderThanMs / 1000, concurrency: batch.concurrency, maxPerSecond: options?.maxPerSecond }, 'lightroom-ims: renewal run started')

  async function renewOne (key: string): Promise<void> {
    const userId = key.slice(TOKEN_PREFIX.length)
    // A store failure here throws: it stops the run (with its report), it is not one user's failure.
    const stored = await tokens.read(userId)
    if (stored === undefined) return
    report.scanned++
    const set = stored.value
    const age = now() - (set.refreshIssuedAt ?? set.receivedAt)
    // Young grants include the ones renewed by an earlier (interrupted) run: that is what makes it resumable.
    if (set.refreshToken === undefined || age < olderThanMs) return
    if (!await pace.take(batch.signal)) return
    try {
      const outcome = await tokens.renew(set, log)
      if (outcome === 'renewed') report.renewed++
      else if (outcome === 'unchanged') report.failed++
      else report.busy++
      log.info({ userId, renewed: outcome === 'renewed', outcome }, 'lightroom-ims: grant renewed')
    } catch (error) {
      if (!(error instanceof LightroomError) || error.code === ErrorCodes.STORE_UNAVAILABLE) throw error
      if (error.code === ErrorCodes.LOGIN_REQUIRED) report.loggedOut++
      else report.failed++
    }
  }

  const done = await runBatch({ name: 'renewExpiring', keys: store.backend.scan(TOKEN_PREFIX), report, each: renewOne, log, ...batch })
  log.info(done, 'lightroom-ims: renewal run finished')
  return done
}

function checkAge (olderThanSeconds: unknown, defaultMs: number): number {
  if (olderThanSeconds === undefined) return defaultMs
  if (typeof olderThanSeconds !== 'number' || !Number.isFinite(olderThanSeconds) || olderThanSeconds < 0) {
    throw new LightroomConfigError('olderThanSeconds', 'must be a number of seconds, 0 or more')
  }
  return olderThanSeconds * 1000
}
