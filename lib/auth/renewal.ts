/**
 * The periodic job that keeps idle users signed in: every grant whose refresh token is getting old
 * is refreshed (IMS then issues a new refresh token), before IMS's 14-day limit ends it.
 */
import type { FastifyBaseLogger } from 'fastify'
import { ErrorCodes, LightroomAuthError } from '../errors.js'
import type { TokenStore } from '../store/types.js'
import type { TokenManager } from './token-manager.js'
import { TOKEN_PREFIX } from './token-records.js'
import type { RenewReport } from './token-types.js'

export async function renewExpiring (tokens: TokenManager, store: TokenStore, now: () => number, olderThanMs: number, log: FastifyBaseLogger): Promise<RenewReport> {
  const report: RenewReport = { scanned: 0, renewed: 0, failed: 0, loggedOut: 0 }
  for await (const key of store.backend.scan(TOKEN_PREFIX)) {
    const userId = key.slice(TOKEN_PREFIX.length)
    try {
      const stored = await tokens.read(userId)
      if (stored === undefined) continue
      report.scanned++
      const set = stored.value
      const age = now() - (set.refreshIssuedAt ?? set.receivedAt)
      if (set.refreshToken === undefined || age < olderThanMs) continue
      const after = await tokens.usable(userId, { force: true, rejectedAccessToken: set.accessToken }, set)
      if (after.refreshToken !== set.refreshToken || after.accessToken !== set.accessToken) report.renewed++
      else report.failed++
      log.info({ userId, renewed: after.refreshToken !== set.refreshToken }, 'lightroom-ims: grant renewed')
    } catch (error) {
      if (error instanceof LightroomAuthError && error.code === ErrorCodes.LOGIN_REQUIRED) report.loggedOut++
      else report.failed++
    }
  }
  log.info(report, 'lightroom-ims: renewal run finished')
  return report
}
