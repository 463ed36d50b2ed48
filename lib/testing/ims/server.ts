/**
 * A mock Adobe IMS: a real HTTP server on a loopback port that behaves like
 * IMS, strictness included, so the plugin is tested against the protocol and
 * not against our own assumptions. This file wires the server, counters,
 * faults and the test-facing controls; each endpoint has its own file.
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ImsContext, ImsRequest } from './context.js'
import { endpointPaths, issuerPath } from './discovery.js'
import { playFault } from './fault-response.js'
import { imsFaultQueue } from './faults.js'
import { Delays } from '../shared/delays.js'
import { BodyTooLargeError, closableServer, formParams, listenOrigin, readBody, sendHtml, sendOAuthError, splitTarget } from '../shared/http.js'
import { createSigner } from './keys.js'
import { Ledger } from './ledger.js'
import { notFoundPage } from './pages.js'
import { ROUTES } from './routes.js'
import { resolveSettings } from './settings.js'
import type { MockIms, MockImsEndpoint, MockImsOptions, MockImsUser } from './types.js'

export type {
  MockIms, MockImsClient, MockImsEndpoint, MockImsFault, MockImsFaultTarget, MockImsIntrospection, MockImsOptions, MockImsUser
} from './types.js'

export async function createMockIms (options?: MockImsOptions): Promise<MockIms> {
  const settings = resolveSettings(options)
  const signer = await createSigner()
  const ledger = new Ledger(settings.now)
  const faults = imsFaultQueue()
  const delays = new Delays()
  const counts = new Map<string, number>()
  const bump = (key: string): void => { counts.set(key, (counts.get(key) ?? 0) + 1) }
  const paths = endpointPaths(settings.flavor)
  const byPath = new Map(Object.entries(paths).map(([endpoint, path]) => [path, endpoint as MockImsEndpoint]))
  let signedIn: MockImsUser = settings.users[0] as MockImsUser

  const ctx: ImsContext = {
    settings,
    ledger,
    signer,
    // Both are known once the port is; set right after listen().
    origin: '',
    issuer: '',
    idTokenIssuer: '',
    paths,
    currentUser: () => signedIn
  }

  async function serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('X-Debug-Id', randomUUID())
    // A server's requests always have a url and a method; only client-side ones lack them.
    const { path, query } = splitTarget(req.url as string)
    const endpoint = byPath.get(path)
    if (endpoint === undefined) return sendHtml(res, 404, notFoundPage())
    bump(endpoint)
    const route = ROUTES[endpoint]
    const method = req.method as string
    if (!route.methods.includes(method)) {
      return sendOAuthError(res, 405, 'invalid_request', `${method} is not allowed here`, { Allow: route.methods.join(', ') })
    }
    const form = method === 'POST' ? formParams(req, await readBody(req)) : undefined
    const grantType = endpoint === 'token' ? form?.get('grant_type') : undefined
    if (typeof grantType === 'string') bump(`token:${grantType}`)

    const request: ImsRequest = { req, res, method, query, form }
    const fault = typeof grantType === 'string' && (grantType === 'authorization_code' || grantType === 'refresh_token')
      ? faults.take(`token:${grantType}`, endpoint)
      : faults.take(endpoint)
    if (fault && !(await playFault(ctx, delays, endpoint, request, fault))) return
    await route.handle(ctx, request)
    // Rejections are counted apart so tests can assert, say, that no used refresh token was ever replayed.
    if (res.statusCode >= 400) {
      bump(`${endpoint}:error`)
      if (typeof grantType === 'string') bump(`token:${grantType}:error`)
    }
  }

  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      // Whatever went wrong, the server answers (or hangs up) and keeps running.
      if (res.headersSent || !res.socket || res.socket.destroyed) {
        res.destroy()
      } else if (error instanceof BodyTooLargeError) {
        sendOAuthError(res, 413, 'invalid_request', 'request body too large', { Connection: 'close' })
      } else {
        sendOAuthError(res, 500, 'server_error', 'mock IMS internal error')
      }
    })
  })
  const closeServer = closableServer(server)
  ctx.origin = await listenOrigin(server, settings.port, settings.host)
  ctx.issuer = ctx.origin + issuerPath(settings.flavor)
  ctx.idTokenIssuer = settings.idTokenIssuer === 'host/ims' ? `${ctx.issuer}/ims` : ctx.issuer

  const userBySub = (sub: string, caller: string): MockImsUser => {
    const user = settings.users.find((candidate) => candidate.sub === sub)
    if (!user) throw new TypeError(`${caller}(): unknown user ${sub}`)
    return user
  }

  return {
    origin: ctx.origin,
    issuer: ctx.issuer,
    discoveryUrl: ctx.origin + paths.discovery,
    clients: settings.clients,
    users: settings.users,
    count: (key) => counts.get(key) ?? 0,
    resetCounts: () => counts.clear(),
    fail: (endpoint, fault, times = 1) => faults.add(endpoint, fault, times),
    clearFaults: () => faults.clear(),
    signInAs: (sub) => { signedIn = userBySub(sub, 'signInAs') },
    revokeConsent: (sub) => ledger.revokeUser(userBySub(sub, 'revokeConsent').sub),
    issuedSecrets: () => ledger.secrets(),
    introspect: (accessToken) => {
      const live = ledger.live(accessToken, 'access')
      if (!live) return { active: false }
      return {
        active: true,
        sub: live.grant.user.sub,
        clientId: live.grant.clientId,
        scope: live.record.scopes.join(' '),
        expiresAt: live.record.expiresAt
      }
    },
    activeRefreshTokens: (sub) => ledger.activeRefreshTokens(sub),
    close: async () => {
      faults.clear()
      delays.cancelAll()
      await closeServer()
    }
  }
}
