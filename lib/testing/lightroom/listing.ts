/**
 * The mock's paged lists, paged as Lightroom pages them: assets newest capture first, the next
 * page's link carrying `captured_before=<last capture date>`; albums by name, `name_after=<last
 * name>`; a page runs past `limit` rather than split a tie at its end; links relative to `base`.
 */
import type { MockAlbum, MockAsset, MockLibrary } from './library.js'

export interface ListError {
  status: number
  body: Record<string, unknown>
}

const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z?$/
const DEFAULT_LIMIT = 100
const MAX_LIMIT = 500

function invalid (param: string, reason = 'is invalid'): ListError {
  return { status: 400, body: { code: 1005, description: 'Input Validation Error', errors: { [param]: [reason] } } }
}

function limitOf (query: URLSearchParams): number | ListError {
  const raw = query.get('limit')
  if (raw === null) return DEFAULT_LIMIT
  const limit = Number(raw)
  if (!/^\d+$/.test(raw) || limit < 1 || limit > MAX_LIMIT) return invalid('limit')
  return limit
}

/** The first `limit` items, and any after them tied with the last. */
function takeWithTies<T> (items: T[], limit: number, key: (item: T) => string): T[] {
  const page = items.slice(0, limit)
  const last = page.at(-1)
  if (last === undefined) return page
  let n = page.length
  while (n < items.length && key(items[n]!) === key(last)) page.push(items[n++]!)
  return page
}

function link (path: string, params: URLSearchParams): { href: string } {
  return { href: `${path}?${params.toString()}` }
}

export function assetResource (asset: MockAsset): Record<string, unknown> {
  const self = `assets/${asset.id}`
  const links: Record<string, { href: string }> = { self: { href: self }, '/rels/master': { href: `${self}/master` } }
  for (const type of ['thumbnail2x', '640', '1280', '2048', '2560', 'fullsize']) links[`/rels/rendition_type/${type}`] = { href: `${self}/renditions/${type}` }
  return { id: asset.id, type: 'asset', subtype: asset.subtype, created: asset.created, updated: asset.updated, revision_ids: [], payload: asset.payload, links }
}

/** GET assets and GET albums/{id}/assets. */
export function assetPage (library: MockLibrary, query: URLSearchParams, base: string, album?: MockAlbum): Record<string, unknown> | ListError {
  const limit = limitOf(query)
  if (typeof limit !== 'number') return limit
  for (const param of ['captured_before', 'captured_after', 'updated_since']) {
    const value = query.get(param)
    if (value !== null && !DATE.test(value)) return invalid(param)
  }
  const subtypes = query.get('subtype')?.split(';')
  if (subtypes !== undefined && subtypes.some((subtype) => subtype !== 'image' && subtype !== 'video')) return invalid('subtype')
  const embed = query.get('embed')
  if (embed !== null && embed !== 'asset') return invalid('embed')
  const sha256 = query.get('sha256')
  const before = query.get('captured_before')
  const after = query.get('captured_after')
  const since = query.get('updated_since')
  const matching = library.sorted().filter((asset) =>
    (album === undefined || album.members.has(asset.id)) &&
    (subtypes === undefined || subtypes.includes(asset.subtype)) &&
    (before === null || asset.payload.captureDate < before) &&
    (after === null || asset.payload.captureDate > after) &&
    (since === null || asset.updated.slice(0, 19) > since.slice(0, 19)) &&
    (sha256 === null || (asset.payload['importSource'] as { sha256?: string }).sha256 === sha256))
  const page = takeWithTies(matching, limit, (asset) => asset.payload.captureDate)
  const path = album === undefined ? 'assets' : `albums/${album.id}/assets`
  const links: Record<string, { href: string }> = { self: link(path, query) }
  const last = page.at(-1)
  if (last !== undefined && page.length < matching.length) {
    const next = new URLSearchParams(query)
    next.set('captured_before', last.payload.captureDate)
    links['next'] = link(path, next)
  }
  const resources = page.map((asset) => album === undefined ? assetResource(asset) : albumAsset(album, asset, embed === 'asset'))
  return { base, resources, links }
}

function albumAsset (album: MockAlbum, asset: MockAsset, embed: boolean): Record<string, unknown> {
  const order = album.orderOf.get(asset.id) ?? 0
  return {
    id: asset.id,
    type: 'album_asset',
    created: album.created,
    updated: album.updated,
    payload: { order: order.toString(36).padStart(8, '0'), cover: order === 0 },
    asset: embed ? assetResource(asset) : { id: asset.id, links: { self: { href: `assets/${asset.id}` } } },
    links: { self: { href: `albums/${album.id}/assets/${asset.id}` } }
  }
}

export function albumResource (album: MockAlbum): Record<string, unknown> {
  return {
    id: album.id,
    type: 'album',
    subtype: album.subtype,
    created: album.created,
    updated: album.updated,
    ...(album.serviceId === undefined ? {} : { serviceId: album.serviceId }),
    payload: { name: album.name, userCreated: album.created, userUpdated: album.updated },
    links: { self: { href: `albums/${album.id}` }, '/rels/assets': { href: `albums/${album.id}/assets` } }
  }
}

/** GET albums: by name, then id. */
export function albumPage (library: MockLibrary, query: URLSearchParams, base: string): Record<string, unknown> | ListError {
  const limit = limitOf(query)
  if (typeof limit !== 'number') return limit
  const subtypes = query.get('subtype')?.split(';')
  const known = ['collection', 'collection_set', 'project', 'project_set', 'topic']
  if (subtypes !== undefined && subtypes.some((subtype) => !known.includes(subtype))) return invalid('subtype')
  const after = query.get('name_after')
  const matching = [...library.albums.values()]
    .filter((album) => (subtypes === undefined || subtypes.includes(album.subtype)) && (after === null || album.name > after))
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1)
  const page = takeWithTies(matching, limit, (album) => album.name)
  const links: Record<string, { href: string }> = { self: link('albums', query) }
  const last = page.at(-1)
  if (last !== undefined && page.length < matching.length) {
    const next = new URLSearchParams(query)
    next.set('name_after', last.name)
    links['next'] = link('albums', next)
  }
  return { base, resources: page.map(albumResource), links }
}
