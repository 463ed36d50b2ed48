/**
 * Which catalog-scoped endpoint a request is for, and the answers of the read-only ones: albums,
 * album assets, assets, one asset, renditions (GET and HEAD) and their generation.
 */
import type { ServerResponse } from 'node:http'
import { jpegSize, jpegStream } from './jpeg.js'
import type { MockLibrary } from './library.js'
import { albumPage, assetPage, assetResource } from './listing.js'
import type { MockLightroomEndpoint, MockRenditionType } from './types.js'
import { assetMissing } from './uploads.js'
import type { Reply } from './uploads.js'

export interface CatalogRoute {
  endpoint: MockLightroomEndpoint
  /** Path parameters: the album or asset id, the rendition type. */
  params: string[]
}

const ROUTES: Array<[RegExp, Record<string, MockLightroomEndpoint>]> = [
  [/^albums$/, { GET: 'albums' }],
  [/^albums\/([^/]+)\/assets$/, { GET: 'albumAssets', PUT: 'addToAlbum' }],
  [/^assets$/, { GET: 'assets' }],
  [/^assets\/([^/]+)$/, { GET: 'asset', PUT: 'createAsset' }],
  [/^assets\/([^/]+)\/master$/, { PUT: 'master' }],
  [/^assets\/([^/]+)\/renditions$/, { POST: 'generateRenditions' }],
  [/^assets\/([^/]+)\/renditions\/([^/]+)$/, { GET: 'rendition', HEAD: 'rendition' }]
]

/** The route for a path below /v2/catalogs/{id}/; `allow` lists the methods when only the method is wrong. */
export function catalogRoute (rest: string, method: string): CatalogRoute | { allow: string } | undefined {
  for (const [pattern, methods] of ROUTES) {
    const match = pattern.exec(rest)
    if (match === null) continue
    const endpoint = methods[method]
    return endpoint === undefined ? { allow: Object.keys(methods).join(', ') } : { endpoint, params: match.slice(1) }
  }
  return undefined
}

export const GENERATED_TYPES = ['2560', 'fullsize']
export const RENDITION_TYPES: MockRenditionType[] = ['thumbnail2x', '640', '1280', '2048', '2560', 'fullsize']

export interface ReadContext {
  library: MockLibrary
  base: string
  query: URLSearchParams
  now: number
}

export function listAlbums (ctx: ReadContext): Reply {
  const page = albumPage(ctx.library, ctx.query, ctx.base)
  return 'status' in page ? page as Reply : { status: 200, body: page }
}

export function listAssets (ctx: ReadContext, albumId?: string): Reply {
  const album = albumId === undefined ? undefined : ctx.library.albums.get(albumId)
  if (albumId !== undefined && album === undefined) return { status: 404, body: { code: 1000, description: 'Resource not found', subtype: 'ResourceNotFoundError', errors: { album: ['does not exist'] } } }
  const page = assetPage(ctx.library, ctx.query, ctx.base, album)
  return 'status' in page ? page as Reply : { status: 200, body: page }
}

export function readAsset (ctx: ReadContext, assetId: string): Reply {
  const asset = ctx.library.assets.get(assetId)
  if (asset === undefined) return assetMissing
  return { status: 200, body: { base: ctx.base, ...assetResource(asset) } }
}

export function generate (ctx: ReadContext, assetId: string, header: string | undefined, delayMs: number): Reply {
  const asset = ctx.library.assets.get(assetId)
  if (asset === undefined) return assetMissing
  const types = (header ?? '').split(',').map((type) => type.trim()).filter((type) => type !== '')
  if (types.length === 0) return { status: 400, body: { code: 1005, description: 'Input Validation Error', errors: { 'X-Generate-Renditions': ['required'] } } }
  if (types.some((type) => !GENERATED_TYPES.includes(type))) return { status: 400, body: { code: 1005, description: 'Input Validation Error', errors: { rendition_type: ['not supported'] } } }
  const links: Record<string, { href: string }> = {}
  for (const type of types) {
    if (!asset.generated.has(type)) asset.generated.set(type, ctx.now + delayMs)
    links[`/rels/rendition_type/${type}`] = { href: `assets/${assetId}/renditions/${type}` }
  }
  // Accepted, with a body of links and no Location header: the client polls those links.
  return { status: 202, body: { base: ctx.base, links } }
}

/** Serves a rendition (GET streams it, HEAD answers its headers), or says why not. */
export function sendRendition (ctx: ReadContext, res: ServerResponse, head: boolean, assetId: string, type: string, sizes: Record<MockRenditionType, number>): Reply | undefined {
  if (!(RENDITION_TYPES as string[]).includes(type)) return { status: 400, body: { code: 1005, description: 'Input Validation Error', errors: { rendition_type: ['not supported'] } } }
  const asset = ctx.library.assets.get(assetId)
  if (asset === undefined) return assetMissing
  const readyAt = asset.generated.get(type)
  const missing = (asset.upload !== undefined && asset.upload.master === undefined) ||
    (GENERATED_TYPES.includes(type) && (readyAt === undefined || readyAt > ctx.now))
  if (missing) return { status: 404, body: { code: 1000, description: 'Resource not found', subtype: 'ResourceNotFoundError', errors: { rendition: ['does not exist'] } } }
  // An uploaded JPEG shows itself at every size; everything else gets a generated picture.
  const master = asset.upload?.contentType === 'image/jpeg' ? asset.upload.master : undefined
  const length = master?.length ?? jpegSize(sizes[type as MockRenditionType], asset.picture)
  res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': String(length), 'Cache-Control': 'private, max-age=3600' })
  if (head) res.end()
  else if (master !== undefined) res.end(master)
  else jpegStream(sizes[type as MockRenditionType], asset.picture).pipe(res)
  return undefined
}
