/**
 * The Lightroom partner API (lr.adobe.io) on behalf of one user: account and catalog, the paged
 * lists, renditions streamed and generated, uploads and albums. How a request is sent (key, token,
 * refresh, retries, concurrency cap, origin check) is ./transport.ts; each family of calls has its
 * own file. Errors never carry a token.
 */
import { isLoopbackHost } from '../http/loopback.js'
import type { Dispatcher } from 'undici'
import type { RetryPolicy } from '../http/retry.js'
import { CatalogIdCache, CatalogScope, expectJson } from './catalog.js'
import { invalidResponse } from './failures.js'
import { ConcurrencyLimit } from './limiter.js'
import { albumAssets, albums, assets } from './paging.js'
import type { AlbumAssetsOptions, AlbumsOptions, AssetsOptions } from './paging.js'
import { generateRenditions, rendition } from './renditions.js'
import type { GenerateOptions, Rendition, RenditionOptions } from './renditions.js'
import { LightroomTransport } from './transport.js'
import type { AccessTokenOptions } from './transport.js'
import { checkId, optionalSignal } from './input.js'
import type { GeneratedRenditionType, RenditionType } from './input.js'
import { addToAlbum, uploadAsset } from './upload.js'
import type { AddToAlbumResult, UploadOptions, UploadResult } from './upload.js'
import type { LightroomAccount, LightroomAlbum, LightroomAlbumAsset, LightroomAsset, LightroomCatalog } from './types.js'

export type {
  EntitlementStatus, LightroomAccount, LightroomAlbum, LightroomAlbumAsset, LightroomAsset, LightroomCatalog,
  LightroomEntitlement, LightroomImportSource, LightroomLink, LightroomResource, LightroomStorage
} from './types.js'
export type { AccessTokenOptions } from './transport.js'
export type { AlbumAssetsOptions, AlbumsOptions, AssetsOptions } from './paging.js'
export type { GenerateOptions, Rendition, RenditionOptions } from './renditions.js'
export type { AddToAlbumResult, UploadOptions, UploadResult } from './upload.js'
export type { GeneratedRenditionType, RenditionType } from './input.js'
export { GENERATED_RENDITION_TYPES, MAX_PAGE_LIMIT, RENDITION_TYPES } from './input.js'
export { ConcurrencyLimit } from './limiter.js'
export { CatalogIdCache } from './catalog.js'

export const LIGHTROOM_BASE_URL = 'https://lr.adobe.io'
const DEFAULT_TIMEOUT_MS = 10_000
/** What Adobe's partner docs ask for 429s. */
const DEFAULT_RETRIES = 3
const DEFAULT_RETRY_BASE_DELAY_MS = 500
const DEFAULT_MAX_RETRY_DELAY_MS = 8_000
/** Concurrent calls of a client built without a shared limiter. */
export const DEFAULT_MAX_CONCURRENCY = 16

export interface LightroomClientOptions {
  /** Default 'https://lr.adobe.io'. An origin only; plain http only to a loopback host (the mock). */
  baseUrl?: string | undefined
  /** The IMS client id, sent as X-API-Key. */
  apiKey: string
  /** Gets the user's access token; called with `{ force: true, rejectedAccessToken }` after a 401 or a 403 `4300`. */
  accessToken: (options?: AccessTokenOptions) => Promise<string>
  dispatcher?: Dispatcher | undefined
  /** Per attempt (for streams and upload parts: waiting for headers, and body inactivity). Default 10000. */
  timeoutMs?: number | undefined
  /** Extra attempts after a 429, a 5xx, a timeout or a reset. Default 3. */
  retries?: number | undefined
  /** First backoff step; doubles on each retry, with jitter. Default 500. */
  retryBaseDelayMs?: number | undefined
  /** Cap for one wait, backoff and Retry-After alike. Default 8000. */
  maxRetryDelayMs?: number | undefined
  /** Injectable for tests, to record waits instead of making them (retries and rendition polling). */
  sleep?: ((ms: number) => Promise<void>) | undefined
  /** Shared by every client of an app (the plugin passes its own); else a cap of `maxConcurrency` for this client. */
  limiter?: ConcurrencyLimit | undefined
  /** Default 16; ignored when `limiter` is given. */
  maxConcurrency?: number | undefined
  /** Shared by the clients of an app (the plugin passes its own): the catalog id is read once per token, not once per client. */
  catalogIdCache?: CatalogIdCache | undefined
}

/** Only trial and subscriber accounts may use the partner APIs; `*_expired` and `created` may not. */
export function isEntitled (account: LightroomAccount): boolean {
  const status = account.entitlement?.status
  return status === 'trial' || status === 'subscriber'
}

export class LightroomClient {
  readonly #transport: LightroomTransport
  readonly #scope: CatalogScope
  readonly #sleep: ((ms: number) => Promise<void>) | undefined
  #account: Promise<LightroomAccount> | undefined

  constructor (options: LightroomClientOptions) {
    const origin = lightroomOrigin(options.baseUrl ?? LIGHTROOM_BASE_URL)
    if (typeof options.apiKey !== 'string' || options.apiKey === '') throw new TypeError('LightroomClient: `apiKey` must be a non-empty string')
    if (typeof options.accessToken !== 'function') throw new TypeError('LightroomClient: `accessToken` must be a function')
    const retries = checkedNumber('retries', options.retries, DEFAULT_RETRIES, 0)
    if (!Number.isInteger(retries)) throw new TypeError('LightroomClient: `retries` must be an integer')
    const retry: RetryPolicy = {
      retries,
      baseDelayMs: checkedNumber('retryBaseDelayMs', options.retryBaseDelayMs, DEFAULT_RETRY_BASE_DELAY_MS, 0),
      maxDelayMs: checkedNumber('maxRetryDelayMs', options.maxRetryDelayMs, DEFAULT_MAX_RETRY_DELAY_MS, 0),
      sleep: options.sleep
    }
    if (options.limiter !== undefined && !(options.limiter instanceof ConcurrencyLimit)) throw new TypeError('LightroomClient: `limiter` must be a ConcurrencyLimit')
    const maxConcurrency = checkedNumber('maxConcurrency', options.maxConcurrency, DEFAULT_MAX_CONCURRENCY, 1)
    this.#sleep = options.sleep
    this.#transport = new LightroomTransport({
      origin,
      apiKey: options.apiKey,
      accessToken: options.accessToken,
      dispatcher: options.dispatcher,
      timeoutMs: checkedNumber('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS, 1),
      retry,
      limiter: options.limiter ?? new ConcurrencyLimit(Math.floor(maxConcurrency))
    })
    if (options.catalogIdCache !== undefined && !(options.catalogIdCache instanceof CatalogIdCache)) throw new TypeError('LightroomClient: `catalogIdCache` must be a CatalogIdCache')
    this.#scope = new CatalogScope(this.#transport, options.catalogIdCache === undefined ? undefined : { cache: options.catalogIdCache, token: async () => await options.accessToken() })
  }

  /** GET /v2/health: needs the API key only, so it costs no token (and works for nobody signed in). */
  async health (): Promise<unknown> {
    const answer = await this.#transport.exchange({ method: 'GET', url: `${this.#transport.origin}/v2/health`, auth: false })
    return jsonBody(answer)
  }

  async account (): Promise<LightroomAccount> {
    const answer = await this.#transport.exchange({ method: 'GET', url: `${this.#transport.origin}/v2/account`, auth: true })
    const body = expectJson(answer, 'GET')
    if (typeof body['id'] !== 'string') throw invalidResponse('GET', answer.path, 'the body is not a Lightroom resource')
    return body as LightroomAccount
  }

  /** The user's catalog, or null when they have none yet (Lightroom answers 404). */
  async catalog (): Promise<LightroomCatalog | null> {
    return await this.#scope.readCatalog()
  }

  /**
   * GET of any path under /v2/, e.g. `/v2/catalogs/${catalog.id}/albums`. Absolute URLs and anything
   * the URL parser would rewrite are refused before a token is fetched: the bearer token goes to the
   * configured Lightroom origin and nowhere else.
   */
  async get<T = unknown> (path: string): Promise<T> {
    const origin = this.#transport.origin
    if (typeof path !== 'string' || !path.startsWith('/v2/') || !URL.canParse(path, origin) || new URL(path, origin).href !== origin + path) {
      throw new TypeError('LightroomClient.get(): the path must be relative, already encoded and start with /v2/')
    }
    return jsonBody(await this.#transport.exchange({ method: 'GET', url: origin + path, auth: true })) as T
  }

  /** The catalog's albums, page after page (`links.next`). */
  albums (options?: AlbumsOptions): AsyncGenerator<LightroomAlbum> {
    return albums(this.#scope, options)
  }

  /** An album's assets, with the asset embedded (`embed=asset`), newest capture first. */
  albumAssets (albumId: string, options?: AlbumAssetsOptions): AsyncGenerator<LightroomAlbumAsset> {
    return albumAssets(this.#scope, albumId, options)
  }

  /** The catalog's assets, newest capture first. */
  assets (options?: AssetsOptions): AsyncGenerator<LightroomAsset> {
    return assets(this.#scope, options)
  }

  /** One asset, or null when Lightroom has no such asset. */
  async asset (assetId: string, options: { signal?: AbortSignal } = {}): Promise<LightroomAsset | null> {
    checkId('assetId', assetId)
    const signal = optionalSignal('signal', options.signal)
    const answer = await this.#scope.call(`assets/${assetId}`, { method: 'GET', signal })
    if (answer.status === 404 && answer.json !== undefined) return null
    return expectJson(answer, 'GET') as LightroomAsset
  }

  /** A rendition as a stream (never buffered), or null when it does not exist (yet). */
  async rendition (assetId: string, type: RenditionType, options?: RenditionOptions): Promise<Rendition | null> {
    return await rendition(this.#scope, assetId, type, options)
  }

  /** Asks Lightroom to make 'fullsize' and/or '2560', then polls until they are ready. */
  async generateRenditions (assetId: string, types: GeneratedRenditionType[], options?: GenerateOptions): Promise<{ ready: GeneratedRenditionType[] }> {
    return await generateRenditions(this.#scope, assetId, types, options, this.#sleep)
  }

  /** Creates an asset and uploads its original in parts; see UploadOptions. */
  async uploadAsset (options: UploadOptions): Promise<UploadResult> {
    return await uploadAsset(this.#scope, async () => await this.#myAccount(), options)
  }

  /** Adds assets to an album, 50 a call; per-asset refusals are in `failed`. */
  async addToAlbum (albumId: string, assetIds: string[], options: { signal?: AbortSignal } = {}): Promise<AddToAlbumResult> {
    return await addToAlbum(this.#scope, albumId, assetIds, options.signal)
  }

  /** The account, read once per client (uploads need its id and entitlement). */
  async #myAccount (): Promise<LightroomAccount> {
    const pending = this.#account ?? (this.#account = this.account())
    pending.catch(() => { if (this.#account === pending) this.#account = undefined })
    return await pending
  }
}

function jsonBody (answer: Parameters<typeof expectJson>[0]): unknown {
  if (answer.status >= 200 && answer.status < 300 && answer.text.trim() !== '' && answer.json === undefined) {
    throw invalidResponse('GET', answer.path, 'the body is not JSON')
  }
  if (answer.status >= 200 && answer.status < 300) return answer.json ?? null
  return expectJson(answer, 'GET')
}

/**
 * The origin a base URL stands for; throws TypeError unless it is an origin only, and https unless
 * it is the loopback (the mock Lightroom): the bearer token goes wherever this points. Exported so
 * that option validation can reject a bad `lightroomBaseUrl` at registration.
 */
export function lightroomOrigin (baseUrl: string): string {
  const url = URL.canParse(baseUrl) ? new URL(baseUrl) : undefined
  const loopback = url !== undefined && isLoopbackHost(url.hostname)
  if (url === undefined || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
    throw new TypeError('LightroomClient: `baseUrl` must be an https URL (plain http only to localhost)')
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError('LightroomClient: `baseUrl` must be an origin only, such as https://lr.adobe.io')
  }
  return url.origin
}

function checkedNumber (name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < min) throw new TypeError(`LightroomClient: \`${name}\` must be a number >= ${min}`)
  return value
}
