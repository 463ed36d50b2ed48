/**
 * The mock's catalog-scoped half: `/v2/catalogs/{catalog_id}/...` for one authenticated user. The
 * catalog id must be the user's current one (a changed id answers Lightroom's documented 404
 * "catalog does not exist"); bodies are read with limits like Lightroom's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BodyTooLargeError, readBody } from '../shared/http.js'
import { sendLightroomJson } from './bodies.js'
import { catalogRoute, generate, listAlbums, listAssets, readAsset, sendRendition } from './catalog-routes.js'
import type { CatalogRoute, ReadContext } from './catalog-routes.js'
import type { MockLibrary } from './library.js'
import type { MockLightroomEndpoint, MockRenditionType } from './types.js'
import { MAX_MASTER_CALL_BYTES, addToAlbum, checkMaster, createAsset, putMaster } from './uploads.js'
import type { Reply } from './uploads.js'

export const CATALOG_GONE = { code: 1000, description: 'Resource not found', subtype: 'ResourceNotFoundError', errors: { catalog: ['does not exist'] } }

export interface CatalogSettings {
  origin: string
  renditionSizes: Record<MockRenditionType, number>
  renditionDelayMs: number
}

/** The endpoint a catalog path names, for counting and faults, before anything else is checked. */
export function catalogEndpoint (path: string, method: string): MockLightroomEndpoint | undefined {
  const match = /^\/v2\/catalogs\/[^/]+\/(.+)$/.exec(path)
  if (match === null) return undefined
  const route = catalogRoute(match[1]!, method)
  return route !== undefined && 'endpoint' in route ? route.endpoint : undefined
}

export async function serveCatalog (
  req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams,
  user: { catalogId: string, library: () => MockLibrary }, settings: CatalogSettings
): Promise<void> {
  const match = /^\/v2\/catalogs\/([^/]+)(?:\/(.*))?$/.exec(path)
  const [, catalogId = '', rest = ''] = match ?? []
  if (catalogId !== user.catalogId) return sendLightroomJson(res, 404, CATALOG_GONE)
  const route = catalogRoute(rest, req.method as string)
  if (route === undefined) return sendLightroomJson(res, 404, { code: 1000, description: 'Resource not found' })
  if ('allow' in route) return sendLightroomJson(res, 405, { code: '405', description: 'Method Not Allowed' }, { Allow: route.allow })
  const base = `${settings.origin}/v2/catalogs/${catalogId}/`
  const ctx: ReadContext = { library: user.library(), base, query, now: Date.now() }
  const reply = await answer(req, res, route, ctx, settings)
  if (reply !== undefined) sendLightroomJson(res, reply.status, reply.body ?? {}, reply.headers)
}

async function answer (req: IncomingMessage, res: ServerResponse, route: CatalogRoute, ctx: ReadContext, settings: CatalogSettings): Promise<Reply | undefined> {
  const [id = '', type = ''] = route.params
  switch (route.endpoint) {
    case 'albums': return listAlbums(ctx)
    case 'albumAssets': return listAssets(ctx, id)
    case 'assets': return listAssets(ctx)
    case 'asset': return readAsset(ctx, id)
    case 'rendition': return sendRendition(ctx, res, req.method === 'HEAD', id, type, settings.renditionSizes)
    case 'generateRenditions': {
      await drain(req)
      return generate(ctx, id, header(req, 'x-generate-renditions'), settings.renditionDelayMs)
    }
    case 'createAsset': {
      const json = await jsonBody(req)
      if (json instanceof BodyTooLargeError) return { status: 413, body: { error_code: '1007', message: 'The resource is too big' } }
      return createAsset(ctx.library, id, json, header(req, 'if-none-match'))
    }
    case 'addToAlbum': {
      const json = await jsonBody(req)
      if (json instanceof BodyTooLargeError) return { status: 413, body: { error_code: '1007', message: 'The resource is too big' } }
      return addToAlbum(ctx.library, id, json, ctx.base)
    }
    case 'master': {
      const refused = checkMaster(ctx.library, id, req)
      if (refused !== undefined) {
        // Answer at once and close: reading a refused 200 MB body would only waste time.
        res.setHeader('Connection', 'close')
        req.resume()
        return refused
      }
      const bytes = await readBytes(req, Number(req.headers['content-length']))
      if (bytes === undefined) return { status: 400, body: { code: 1005, description: 'Input Validation Error', errors: { body: ['does not match Content-Length'] } } }
      return putMaster(ctx.library, id, header(req, 'content-range'), header(req, 'content-type') ?? '', bytes)
    }
    default: return { status: 404, body: { code: 1000, description: 'Resource not found' } }
  }
}

function header (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

async function drain (req: IncomingMessage): Promise<void> {
  req.resume()
  await new Promise((resolve) => { req.once('end', resolve).once('close', resolve) })
}

/** The parsed JSON body, undefined when it is not JSON, BodyTooLargeError past 64 KB. */
async function jsonBody (req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse(await readBody(req))
  } catch (error) {
    return error instanceof BodyTooLargeError ? error : undefined
  }
}

/** Exactly `length` bytes (checked against Content-Length before reading), or undefined. */
async function readBytes (req: IncomingMessage, length: number): Promise<Buffer | undefined> {
  if (length > MAX_MASTER_CALL_BYTES) return undefined
  const bytes = Buffer.allocUnsafe(length)
  let at = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    if (at + chunk.length > length) return undefined
    chunk.copy(bytes, at)
    at += chunk.length
  }
  return at === length ? bytes : undefined
}
