/**
 * The paged lists: albums, an album's assets, the catalog's assets. A walk follows `links.next`,
 * resolved against the page's `base` (links are relative) and refused when it leaves the configured
 * origin; every page asks for the token again (a walk over 100,000 assets outlives an access
 * token); one page is held at a time, and nothing is fetched before the caller asks for more.
 */
import { isJsonObject } from './body.js'
import type { CatalogScope } from './catalog.js'
import { expectJson } from './catalog.js'
import { invalidResponse } from './failures.js'
import {
  checkId, fail, optionalDate, optionalLimit, optionalSignal, optionalSubtype, optionalSubtypes, query
} from './input.js'
import type { LightroomAlbum, LightroomAlbumAsset, LightroomAsset } from './types.js'
import { LightroomApiError } from '../errors.js'

export interface AlbumsOptions {
  /** 'project', 'project_set', 'collection', 'collection_set'. */
  subtype?: string
  /** Albums whose name sorts after this one. */
  nameAfter?: string
  /** Page size (Lightroom's default 100, at most 500); a page may be longer when names tie. */
  limit?: number
  signal?: AbortSignal
}

export interface AssetFilters {
  /** Lightroom date strings such as '2024-03-01T00:00:00'. */
  capturedAfter?: string
  capturedBefore?: string
  /** ['image'], ['video'], ['image', 'video']. */
  subtype?: string[]
  /** Page size (default 100, at most 500); a page may be longer when capture dates tie. */
  limit?: number
  signal?: AbortSignal
}

export interface AssetsOptions extends AssetFilters {
  /** Only assets changed after this date. */
  updatedSince?: string
  /** Only assets whose original has this SHA-256 (64 hex digits). */
  sha256?: string
}

export type AlbumAssetsOptions = AssetFilters

export function albums (scope: CatalogScope, options: AlbumsOptions = {}): AsyncGenerator<LightroomAlbum> {
  const signal = optionalSignal('signal', options.signal)
  const q = query({
    subtype: optionalSubtype('subtype', options.subtype),
    name_after: optionalName('nameAfter', options.nameAfter),
    limit: optionalLimit('limit', options.limit)
  })
  return walk(scope, `albums${q}`, signal, (resource) => resource as LightroomAlbum)
}

export function albumAssets (scope: CatalogScope, albumId: string, options: AlbumAssetsOptions = {}): AsyncGenerator<LightroomAlbumAsset> {
  checkId('albumId', albumId)
  const signal = optionalSignal('signal', options.signal)
  const q = query({ ...filterParams(options), embed: 'asset' })
  return walk(scope, `albums/${albumId}/assets${q}`, signal, albumAsset)
}

export function assets (scope: CatalogScope, options: AssetsOptions = {}): AsyncGenerator<LightroomAsset> {
  const signal = optionalSignal('signal', options.signal)
  if (options.sha256 !== undefined && (typeof options.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(options.sha256))) {
    fail('sha256', 'must be 64 lowercase hex digits')
  }
  const q = query({ updated_since: optionalDate('updatedSince', options.updatedSince), ...filterParams(options), sha256: options.sha256 })
  return walk(scope, `assets${q}`, signal, (resource) => resource as LightroomAsset)
}

function filterParams (options: AssetFilters): Record<string, string | number | undefined> {
  return {
    captured_after: optionalDate('capturedAfter', options.capturedAfter),
    captured_before: optionalDate('capturedBefore', options.capturedBefore),
    subtype: optionalSubtypes('subtype', options.subtype),
    limit: optionalLimit('limit', options.limit)
  }
}

function optionalName (field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '' || value.length > 1024) fail(field, 'must be a non-empty album name')
  return value
}

/**
 * An album_asset wrapper as the asset it holds (id, subtype, payload, links), with the album's own
 * entry (its id, order, cover) kept beside it in `albumAsset`.
 */
function albumAsset (resource: Record<string, unknown>): LightroomAlbumAsset {
  const asset = isJsonObject(resource['asset']) ? resource['asset'] : {}
  return {
    ...asset,
    id: typeof asset['id'] === 'string' ? asset['id'] : String(resource['id']),
    albumAsset: { id: resource['id'], payload: resource['payload'], links: resource['links'] }
  } as LightroomAlbumAsset
}

async function * walk<T> (scope: CatalogScope, first: string, signal: AbortSignal | undefined, map: (resource: Record<string, unknown>) => T): AsyncGenerator<T> {
  const { transport } = scope
  let answer = await scope.call(first, { method: 'GET', signal })
  let url = ''
  for (;;) {
    const page = expectJson(answer, 'GET')
    const resources = page['resources']
    if (!Array.isArray(resources)) throw invalidResponse('GET', answer.path, 'the page has no resources array')
    for (const resource of resources) {
      if (isJsonObject(resource)) yield map(resource)
    }
    const next = nextLink(page, answer.path, transport.origin)
    if (next === undefined) return
    // A page pointing at itself would walk forever.
    if (next === url) throw invalidResponse('GET', answer.path, 'links.next points at the same page')
    url = next
    signal?.throwIfAborted()
    answer = await transport.exchange({ method: 'GET', url, auth: true, signal })
  }
}

/** links.next resolved against base (RFC 3986), refused when it leaves our origin or /v2/. */
function nextLink (page: Record<string, unknown>, path: string, origin: string): string | undefined {
  const links = page['links']
  const next = isJsonObject(links) && isJsonObject(links['next']) ? links['next']['href'] : undefined
  if (next === undefined) return undefined
  if (typeof next !== 'string' || next === '') throw invalidResponse('GET', path, 'links.next has no href')
  const base = typeof page['base'] === 'string' ? page['base'] : `${origin}${path}`
  const url = URL.canParse(next, base) ? new URL(next, base) : undefined
  if (url === undefined || url.origin !== origin || !url.pathname.startsWith('/v2/')) {
    throw new LightroomApiError({ statusCode: 502, lightroomCode: 'LR_API_FOREIGN_LINK', description: 'links.next leaves the configured Lightroom origin: not followed', path, transient: false })
  }
  return url.href
}
