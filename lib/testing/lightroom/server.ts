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
  ACCOUNT_STATE, EXPIRED_TOKEN, INVALID_API_KEY, INVALID_TOKEN, NOT_FOUND, accountBody, catalogBody, healthBody, hexId, sendLightroomJson, statusError
} from './bodies.js'
import { CATALOG_GONE, catalogEndpoint, serveCatalog } from './catalog-server.js'
import type { CatalogSettings } from './catalog-server.js'
import { lightroomFaultQueue } from './faults.js'
import { MockLibrary, hex32 } from './library.js'
import { MIN_JPEG_BYTES } from './jpeg.js'
import type {
  MockLightroom, MockLightroomEndpoint, MockLightroomFault, MockLightroomLibrary, MockLightroomOptions, MockLightroomRequest, MockRenditionType
} from './types.js'

export type {
  MockLightroom, MockLightroomEndpoint, MockLightroomEntitlement, MockLightroomFault, MockLightroomOptions,
  MockLightroomRequest, MockLightroomUser, MockLibrarySettings, MockLightroomLibrary, MockRenditionType
} from './types.js'

const ENTITLED = new Set(['trial', 'subscriber'])
const DEFAULT_RENDITION_SIZES: Record<MockRenditionType, number> = {
  thumbnail2x: 24_000, 640: 80_000, 1280: 260_000, 2048: 650_000, 2560: 1_000_000, fullsize: 4_000_000
}

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
  const settings = checkedSettings(options)
  const librarySettings = { assets: settings.assets, albums: settings.albums, seed: settings.seed, apiKey: apiKeys[0] ?? 'mock' }
  const libraries = new Map<string, MockLibrary>()
  const catalogIds = new Map<string, string>()
  const libraryOf = (sub: string): MockLibrary => {
    let library = libraries.get(sub)
    if (library === undefined) libraries.set(sub, library = new MockLibrary(sub, librarySettings))
    return library
  }
  const catalogIdOf = (sub: string): string => catalogIds.get(sub) ?? hexId('catalog', sub)

  async function serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A server's requests always have a url and a method.
    const target = req.url as string
    const { path, query } = splitTarget(target)
    const endpoint = ENDPOINTS.get(path) ?? catalogEndpoint(path, req.method as string)
    const name = endpoint ?? 'unknown'
    const apiKey = header(req, 'x-api-key')
    const accessToken = /^Bearer\s+(\S+)$/i.exec(header(req, 'authorization') ?? '')?.[1]
    log.push({ endpoint: name, method: req.method as string, path: target, apiKey, accept: header(req, 'accept'), accessToken })
    bump('*')
    bump(name)
    res.once('finish', () => bump(`${name}:${res.statusCode}`))
    res.once('close', () => { if (!res.writableFinished) bump(`${name}:reset`) })

    const catalogScoped = path.startsWith('/v2/catalogs/')
    if (req.method !== 'GET' && !catalogScoped) return sendLightroomJson(res, 405, statusError(405), { Allow: 'GET' })
    const fault = endpoint === undefined ? undefined : faults.take(endpoint, '*')
    if (fault !== undefined && !(await playFault(req, res, fault))) return
    // The gateway checks the key before anything else, and health needs nothing more.
    if (apiKey === undefined || !apiKeys.includes(apiKey)) return sendLightroomJson(res, 403, INVALID_API_KEY)
    if (endpoint === 'health') return sendLightroomJson(res, 200, healthBody())
    if (accessToken === undefined) return sendLightroomJson(res, 401, INVALID_TOKEN)
    const imsUser = tokenOwner(ims, accessToken, apiKey)
    if (imsUser === undefined) {
      return settings.rejectedTokenStatus === 401 ? sendLightroomJson(res, 401, INVALID_TOKEN) : sendLightroomJson(res, 403, EXPIRED_TOKEN)
    }
    const user = users.get(imsUser.sub) ?? {}
    if (endpoint === 'account') return sendLightroomJson(res, 200, accountBody(origin, imsUser, user, Date.now()))
    if (endpoint !== 'catalog' && !catalogScoped) return sendLightroomJson(res, 404, NOT_FOUND)
    if (!ENTITLED.has(user.entitlement ?? 'subscriber')) return sendLightroomJson(res, 403, ACCOUNT_STATE)
    const catalogId = catalogIdOf(imsUser.sub)
    if (endpoint === 'catalog') {
      return user.hasCatalog === false ? sendLightroomJson(res, 404, NOT_FOUND) : sendLightroomJson(res, 200, { ...catalogBody(origin, imsUser, user), id: catalogId, links: { self: { href: `v2/catalogs/${catalogId}` } } })
    }
    if (user.hasCatalog === false) return sendLightroomJson(res, 404, CATALOG_GONE)
    await serveCatalog(req, res, path, query, { catalogId, library: () => libraryOf(imsUser.sub) }, { origin, ...settings.catalog })
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
    catalogId: catalogIdOf,
    changeCatalogId: (sub) => {
      const next = hex32('catalog', sub, String(Date.now()), String(Math.random()))
      catalogIds.set(sub, next)
      return next
    },
    library: (sub) => libraryView(libraryOf(sub), catalogIdOf(sub)),
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

interface Settings {
  assets: number
  albums: number
  seed: string
  rejectedTokenStatus: 401 | 403
  catalog: Omit<CatalogSettings, 'origin'>
}

function checkedSettings (options: MockLightroomOptions): Settings {
  const library = options.library ?? {}
  const count = (name: string, value: number | undefined, fallback: number, max: number): number => {
    if (value === undefined) return fallback
    if (!Number.isInteger(value) || value < 0 || value > max) throw new TypeError(`createMockLightroom: \`${name}\` must be an integer from 0 to ${max}`)
    return value
  }
  const sizes = { ...DEFAULT_RENDITION_SIZES }
  for (const [type, bytes] of Object.entries(options.renditionSizes ?? {})) {
    if (!(type in sizes)) throw new TypeError(`createMockLightroom: \`renditionSizes\` has an unknown type "${type}"`)
    sizes[type as MockRenditionType] = count(`renditionSizes.${type}`, bytes, 0, 1024 ** 3)
    if (bytes < MIN_JPEG_BYTES) throw new TypeError(`createMockLightroom: \`renditionSizes.${type}\` must be at least ${MIN_JPEG_BYTES} bytes`)
  }
  if (options.rejectedTokenStatus !== undefined && options.rejectedTokenStatus !== 401 && options.rejectedTokenStatus !== 403) {
    throw new TypeError('createMockLightroom: `rejectedTokenStatus` must be 401 or 403')
  }
  return {
    assets: count('library.assets', library.assets, 2500, 1_000_000),
    albums: count('library.albums', library.albums, 12, 1000),
    seed: typeof library.seed === 'string' ? library.seed : 'lightroom',
    rejectedTokenStatus: options.rejectedTokenStatus ?? 403,
    catalog: { renditionSizes: sizes, renditionDelayMs: count('renditionDelayMs', options.renditionDelayMs, 2000, 3_600_000) }
  }
}

function libraryView (library: MockLibrary, catalogId: string): MockLightroomLibrary {
  return {
    catalogId,
    albums: () => [...library.albums.values()].map((album) => ({ id: album.id, name: album.name, subtype: album.subtype, assets: album.members.size })),
    assetIds: () => library.sorted().map((asset) => asset.id),
    master: (assetId) => library.assets.get(assetId)?.upload?.master,
    hasAsset: (assetId) => library.assets.has(assetId),
    albumAssetIds: (albumId) => [...(library.albums.get(albumId)?.members ?? [])]
  }
}
