/**
 * A mock Lightroom API (lr.adobe.io): a real HTTP server on a loopback port
 * that checks the API key and the bearer token (against the mock IMS), answers
 * account and catalog resources, prefixes every JSON body with `while (1) {}`,
 * and plays queued faults, so the client is tested against Lightroom's quirks.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Delays } from '../shared/delays.js'
import { closableServer, listenOrigin, sendText, splitTarget } from '../shared/http.js'
import type { MockIms, MockImsUser } from '../ims/types.js'
import {
  INVALID_API_KEY, INVALID_TOKEN, NOT_FOUND, accountBody, catalogBody, healthBody, hexId, sendLightroomJson, statusError
} from './bodies.js'
import { lightroomFaultQueue } from './faults.js'
import type {
  MockLightroom, MockLightroomEndpoint, MockLightroomFault, MockLightroomOptions, MockLightroomRequest
} from './types.js'

export type {
  MockLightroom, MockLightroomEndpoint, MockLightroomEntitlement, MockLightroomFault, MockLightroomOptions,
  MockLightroomRequest, MockLightroomUser
} from './types.js'

const ENDPOINTS = new Map<string, MockLightroomEndpoint>([
  ['/v2/health', 'health'],
  ['/v2/account', 'account'],
  ['/v2/catalog', 'catalog']
])

export async function createMockLightroom (options: MockLightroomOptions): Promise<MockLightroom> {
  const { ims } = options
  if (ims === undefined || typeof ims.introspect !== 'function') throw new TypeError('createMockLightroom: `ims` must be a mock IMS')
  const apiKeys = [...(options.apiKeys ?? ims.clients.map((client) => client.clientId))]
  const users = new Map(Object.entries(options.users ?? {}).map(([sub, user]) => [sub, { ...user }]))
  const faults = lightroomFaultQueue()
  const delays = new Delays()
  const counts = new Map<string, number>()
  const log: MockLightroomRequest[] = []
  const bump = (key: string): void => { counts.set(key, (counts.get(key) ?? 0) + 1) }
  let origin = ''

  async function serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    // GETs carry no body; whatever a client sends anyway is drained so the socket stays usable.
    req.resume()
    // A server's requests always have a url and a method.
    const target = req.url as string
    const endpoint = ENDPOINTS.get(splitTarget(target).path)
    const name = endpoint ?? 'unknown'
    const apiKey = header(req, 'x-api-key')
    const accessToken = /^Bearer\s+(\S+)$/i.exec(header(req, 'authorization') ?? '')?.[1]
    log.push({ endpoint: name, method: req.method as string, path: target, apiKey, accept: header(req, 'accept'), accessToken })
    bump('*')
    bump(name)
    res.once('finish', () => bump(`${name}:${res.statusCode}`))
    res.once('close', () => { if (!res.writableFinished) bump(`${name}:reset`) })

    if (req.method !== 'GET') return sendLightroomJson(res, 405, statusError(405), { Allow: 'GET' })
    const fault = endpoint === undefined ? undefined : faults.take(endpoint, '*')
    if (fault !== undefined && !(await playFault(req, res, fault))) return
    // The gateway checks the key before anything else, and health needs nothing more.
    if (apiKey === undefined || !apiKeys.includes(apiKey)) return sendLightroomJson(res, 403, INVALID_API_KEY)
    if (endpoint === 'health') return sendLightroomJson(res, 200, healthBody())
    const imsUser = accessToken === undefined ? undefined : tokenOwner(ims, accessToken, apiKey)
    if (imsUser === undefined) return sendLightroomJson(res, 401, INVALID_TOKEN)
    const user = users.get(imsUser.sub) ?? {}
    if (endpoint === 'account') return sendLightroomJson(res, 200, accountBody(origin, imsUser, user, Date.now()))
    if (endpoint === 'catalog' && user.hasCatalog !== false) return sendLightroomJson(res, 200, catalogBody(origin, imsUser, user))
    sendLightroomJson(res, 404, NOT_FOUND)
  }

  /** True when the request should then be answered normally (a delay ran out). */
  async function playFault (req: IncomingMessage, res: ServerResponse, fault: MockLightroomFault): Promise<boolean> {
    if ('delayMs' in fault) return await delays.wait(fault.delayMs)
    if ('reset' in fault) {
      req.socket.destroy()
      return false
    }
    const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { 'Retry-After': String(fault.retryAfter) }
    if (fault.body !== undefined) {
      const json = /^\s*(?:while|[[{])/.test(fault.body)
      sendText(res, fault.status, fault.body, json ? 'application/json;charset=utf-8' : 'text/html;charset=utf-8', headers)
    } else if (fault.status === 429) {
      // Lightroom's rate limiter answers with no body at all: clients must not expect JSON.
      sendText(res, 429, '', undefined, headers)
    } else {
      sendLightroomJson(res, fault.status, statusError(fault.status), headers)
    }
    return false
  }

  const server = createServer((req, res) => {
    serve(req, res).catch(() => {
      // Nothing above is expected to throw; if it does, the client sees a hang-up rather than a hang.
      res.destroy()
    })
  })
  const closeServer = closableServer(server)
  origin = await listenOrigin(server, options.port ?? 0, options.host ?? '127.0.0.1')

  return {
    origin,
    apiKeys,
    count: (key) => counts.get(key) ?? 0,
    resetCounts: () => counts.clear(),
    requests: () => log.map((entry) => ({ ...entry })),
    fail: (endpoint, fault, times = 1) => faults.add(endpoint, fault, times),
    clearFaults: () => faults.clear(),
    setUser: (sub, user) => { users.set(sub, { ...user }) },
    accountId: (sub) => hexId('account', sub),
    catalogId: (sub) => hexId('catalog', sub),
    close: async () => {
      faults.clear()
      delays.cancelAll()
      await closeServer()
    }
  }
}

function header (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * The IMS user behind a token the mock IMS issued, still live, for this API key; undefined otherwise.
 * A token issued to another client is refused like an invalid one (inferred: the gateway ties the
 * token's client_id to the key).
 */
function tokenOwner (ims: MockIms, accessToken: string, apiKey: string): MockImsUser | undefined {
  const info = ims.introspect(accessToken)
  if (!info.active || info.clientId !== apiKey) return undefined
  return ims.users.find((user) => user.sub === info.sub)
}
