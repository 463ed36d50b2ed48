/**
 * Plays one queued fault. Returns true when the request should then be
 * answered normally (a delay that ran out), false when the fault was the answer.
 */
import { authorizeFault } from './authorize.js'
import type { ImsContext, ImsRequest } from './context.js'
import type { Delays } from '../shared/delays.js'
import { sendOAuthError, sendText } from '../shared/http.js'
import { statusPage } from './pages.js'
import type { MockImsEndpoint, MockImsFault } from './types.js'

export async function playFault (
  ctx: ImsContext,
  delays: Delays,
  endpoint: MockImsEndpoint,
  request: ImsRequest,
  fault: MockImsFault
): Promise<boolean> {
  const { req, res } = request
  if ('delayMs' in fault) {
    // A response's 'close' before it was sent means the connection is gone.
    let gone = false
    res.once('close', () => { gone = true })
    const ran = await delays.wait(fault.delayMs)
    return ran && !(gone && fault.dropIfClientGone === true)
  }
  if ('reset' in fault) {
    req.socket.destroy()
    return false
  }
  if ('oauthError' in fault) {
    // Authorization errors reach the app through the browser, on the redirect.
    if (endpoint === 'authorize') {
      authorizeFault(ctx, request, fault.oauthError, fault.description)
    } else {
      const status = fault.status ?? (fault.oauthError === 'invalid_client' ? 401 : 400)
      sendOAuthError(res, status, fault.oauthError, fault.description)
    }
    return false
  }
  const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { 'Retry-After': String(fault.retryAfter) }
  const body = fault.body ?? statusPage(fault.status)
  const looksJson = /^\s*[[{]/.test(body)
  const type = fault.contentType ?? (looksJson ? 'application/json;charset=utf-8' : 'text/html;charset=utf-8')
  sendText(res, fault.status, body, type, headers)
  return false
}
