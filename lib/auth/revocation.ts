/**
 * Ending a user's grants: revoking refresh tokens at IMS (best effort: IMS expires them by itself
 * eventually) and removing the user's record, so every session they have ends everywhere.
 */
import type { FastifyBaseLogger } from 'fastify'
import { ImsError, storeUnavailable } from '../errors.js'
import { retiredRefreshTokens } from './sign-ins.js'
import type { TokenRecords } from './token-records.js'
import type { ImsCalls } from './token-types.js'

/** Compare-and-delete tries of a sign-out racing writes of the same record (refreshes, re-encryption) before it gives up, saying so. */
const SIGN_OUT_ATTEMPTS = 5

export async function revokeAll (ims: ImsCalls, userId: string, refreshTokens: readonly string[], log: FastifyBaseLogger): Promise<void> {
  for (const refreshToken of refreshTokens) {
    try {
      await ims.revoke(refreshToken, 'refresh_token')
    } catch (error) {
      // A provider without a revocation endpoint has nothing to revoke at; anything else is worth a line.
      const code = error instanceof ImsError ? error.error : undefined
      if (code !== 'not_supported') log.warn({ userId, error: code }, 'lightroom-ims: revoking a grant at IMS failed')
    }
  }
}

/**
 * Every grant this app holds for the user is revoked, then the token record is removed and with it
 * every sign-in it listed. Only the version read is removed: a sign-in landing meanwhile brought a
 * grant not yet revoked, so it goes again; one that never wins throws (503) rather than report a
 * sign-out that did not happen.
 */
export async function removeEverywhere (records: TokenRecords, ims: ImsCalls, now: number, userId: string, log: FastifyBaseLogger): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const stored = await records.read(userId)
    if (stored === undefined) return
    const { refreshToken } = stored.value
    await revokeAll(ims, userId, [...retiredRefreshTokens(stored.value, now), ...(refreshToken === undefined ? [] : [refreshToken])], log)
    if (await records.remove(userId, stored.revision)) {
      await records.deleteSessions((stored.value.signIns ?? []).map((signIn) => signIn.sessionKey))
      return
    }
    if (attempt >= SIGN_OUT_ATTEMPTS - 1) throw storeUnavailable('The sign-out could not be completed: the user\'s record kept changing; try again')
  }
}
