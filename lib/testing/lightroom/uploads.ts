/**
 * The mock's writes: creating an asset (PUT assets/{id}, with If-None-Match on sha256), its
 * original in parts (PUT assets/{id}/master with Content-Range; assembled once every byte is in and
 * checked against the sha256 of its importSource), and album adds (PUT albums/{id}/assets, at most
 * 50, 201 when any went in, 403 with per-asset errors when none did).
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { addMember, lightroomDate } from './library.js'
import type { MockAsset, MockLibrary } from './library.js'
import { pictureOf } from './jpeg.js'

export interface Reply {
  status: number
  body?: Record<string, unknown>
  headers?: Record<string, string>
}

const ID = /^[0-9a-f]{32}$/
/** Lightroom's limit for one master PUT. */
export const MAX_MASTER_CALL_BYTES = 200 * 1024 * 1024
const MASTER_TYPE = /^(?:image\/jpeg|application\/octet-stream(?:;\s*video)?|video\/[\x21-\x7e]+)$/i

const validation = (field: string, reason: string): Reply => ({ status: 400, body: { code: 1005, description: 'Input Validation Error', errors: { [field]: [reason] } } })
const payloadError = (field: string, reason: string): Reply => ({ status: 400, body: { code: 1030, description: 'Payload Validation Error', errors: { [field]: [reason] } } })
export const assetMissing: Reply = { status: 404, body: { code: 1000, description: 'Resource not found', subtype: 'ResourceNotFoundError', errors: { asset: ['does not exist'] } } }

export function createAsset (library: MockLibrary, assetId: string, json: unknown, ifNoneMatch: string | undefined): Reply {
  if (!ID.test(assetId)) return validation('asset_id', 'Must be a valid GUID')
  if (library.assets.has(assetId)) return { status: 403, body: { code: 1002, description: 'Resource already exists', errors: { asset: ['already exists'] } } }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return validation('body', 'Must be valid JSON')
  const { subtype, payload } = json as { subtype?: unknown, payload?: Record<string, unknown> }
  if (subtype !== 'image' && subtype !== 'video') return validation('subtype', 'is invalid')
  if (typeof payload !== 'object' || payload === null) return payloadError('payload', 'required')
  const captureDate = payload['captureDate']
  if (typeof captureDate !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(captureDate)) return payloadError('payload.captureDate', 'invalid')
  const source = payload['importSource'] as Record<string, unknown> | undefined
  for (const field of ['fileName', 'importedOnDevice', 'importedBy', 'importTimestamp']) {
    if (typeof source?.[field] !== 'string' || source[field] === '') return payloadError(`payload.importSource.${field}`, 'required')
  }
  if (ifNoneMatch !== undefined) {
    const taken = [...library.assets.values()].some((asset) => (asset.payload['importSource'] as { sha256?: string } | undefined)?.sha256 === ifNoneMatch)
    if (taken) return { status: 412, body: { code: 1002, description: 'Resource already exists', errors: { sha256: ['already exists'] } } }
  }
  const now = new Date().toISOString()
  const asset: MockAsset = {
    id: assetId,
    subtype,
    created: now,
    updated: now,
    picture: pictureOf(assetId),
    generated: new Map(),
    // Lightroom reads the date from the file; the mock takes the import time.
    payload: { ...payload, captureDate: captureDate.startsWith('0000') ? lightroomDate(Date.parse(String(source!['importTimestamp'])) || Date.now()) : captureDate },
    upload: { contentType: undefined, total: undefined, parts: new Map(), master: undefined }
  }
  library.assets.set(assetId, asset)
  return { status: 201, headers: { Location: `assets/${assetId}` } }
}

/** Checks the headers of a master PUT before its body is read. */
export function checkMaster (library: MockLibrary, assetId: string, req: IncomingMessage): Reply | undefined {
  const asset = library.assets.get(assetId)
  if (asset?.upload === undefined) return asset === undefined ? assetMissing : { status: 403, body: { code: 1016, description: 'Not permitted', errors: { master: ['already exists'] } } }
  if (asset.upload.master !== undefined) return { status: 403, body: { code: 1002, description: 'Resource already exists', errors: { master: ['already exists'] } } }
  const type = req.headers['content-type']
  if (typeof type !== 'string' || !MASTER_TYPE.test(type)) return { status: 415, body: { error_code: '1003', message: 'Invalid content type' } }
  const length = Number(req.headers['content-length'])
  if (!Number.isInteger(length)) return { status: 411, body: { code: 1005, description: 'Input Validation Error', errors: { 'Content-Length': ['required'] } } }
  if (length > MAX_MASTER_CALL_BYTES) return { status: 413, body: { error_code: '1007', message: 'The resource is too big' } }
  return undefined
}

/** One part (or the whole) of an original; assembles and checks it once complete. */
export function putMaster (library: MockLibrary, assetId: string, range: string | undefined, contentType: string, bytes: Buffer): Reply {
  const asset = library.assets.get(assetId)!
  const upload = asset.upload!
  let start = 0
  let total = bytes.length
  if (range !== undefined) {
    const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range)
    if (match === null) return validation('Content-Range', 'is invalid')
    start = Number(match[1])
    total = Number(match[3])
    if (Number(match[2]) - start + 1 !== bytes.length || Number(match[2]) >= total) return validation('Content-Range', 'does not match the body')
  }
  if (upload.total !== undefined && upload.total !== total) return validation('Content-Range', 'total differs from earlier parts')
  upload.total = total
  upload.contentType = contentType
  upload.parts.set(start, bytes)
  const ordered = [...upload.parts.entries()].sort(([a], [b]) => a - b)
  let covered = 0
  for (const [at, part] of ordered) {
    if (at > covered) return { status: 201 }
    covered = Math.max(covered, at + part.length)
  }
  if (covered < total) return { status: 201 }
  const master = Buffer.alloc(total)
  for (const [at, part] of ordered) part.copy(master, at)
  upload.parts.clear()
  const source = asset.payload['importSource'] as { sha256?: string, fileSize?: number }
  const sha256 = createHash('sha256').update(master).digest('hex')
  if ((source.sha256 !== undefined && source.sha256 !== sha256) || (source.fileSize !== undefined && source.fileSize !== total)) {
    // The parts are dropped: the original must be sent again.
    upload.total = undefined
    return validation('master', 'does not match the sha256 or fileSize of importSource')
  }
  upload.master = master
  library.changed()
  return { status: 201 }
}

export function addToAlbum (library: MockLibrary, albumId: string, json: unknown, base: string): Reply {
  const album = library.albums.get(albumId)
  if (album === undefined) return { status: 404, body: { code: 1000, description: 'Resource not found', subtype: 'ResourceNotFoundError', errors: { album: ['does not exist'] } } }
  const resources = (json as { resources?: unknown } | null)?.resources
  if (!Array.isArray(resources) || resources.length === 0) return validation('resources', 'required')
  if (resources.length > 50) return validation('resources', 'at most 50')
  const added: Array<{ id: string, href: string }> = []
  const errors: Array<Record<string, unknown>> = []
  for (const entry of resources) {
    const id = (entry as { id?: unknown } | null)?.id
    const asset = typeof id === 'string' ? library.assets.get(id) : undefined
    if (typeof id !== 'string' || asset === undefined) {
      errors.push({ id, http_status: 404, code: 1000, description: 'Resource not found', errors: { asset: ['does not exist'] } })
    } else if (album.members.has(id)) {
      errors.push({ id, http_status: 403, code: 1002, description: 'Resource already exists', errors: { asset: ['already exists'] } })
    } else {
      addMember(album, id)
      added.push({ id, href: `albums/${albumId}/assets/${id}` })
    }
  }
  if (added.length === 0) return { status: 403, body: { base, errors } }
  return { status: 201, body: { base, resources: added, ...(errors.length > 0 ? { errors } : {}) } }
}
