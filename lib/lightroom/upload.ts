/**
 * Uploads: a client-made asset id, PUT of the asset with its importSource, then the original in
 * parts with Content-Range (a few at a time), and album membership in batches of 50. The body is
 * held to its declared size: a small body is read whole before anything is created; a large one
 * has its last part withheld until the stream has ended at exactly `size` bytes, so Lightroom never
 * completes an original of the wrong length. Lightroom's partner API has no DELETE for assets, so
 * an asset created before a large body fell short stays incomplete; its id is on the error.
 */
import { createHash, randomUUID } from 'node:crypto'
import { LightroomAlreadyExistsError, LightroomNotEntitledError } from '../errors.js'
import { isJsonObject, readErrorBody } from './body.js'
import type { CatalogScope } from './catalog.js'
import { failure } from './catalog.js'
import { checkId, checkIds, fail, optionalDate, optionalSignal, positiveInteger } from './input.js'
import { PartReader } from './parts.js'
import type { UploadBody } from './parts.js'
import { assets } from './paging.js'
import type { LightroomAccount } from './types.js'

export interface UploadOptions {
  /** A Buffer, or a stream / async iterable of chunks (read once, part by part). */
  body: UploadBody
  /** Bytes; the body must be exactly this long. */
  size: number
  fileName: string
  /** 'image/jpeg', 'application/octet-stream' (raw), 'video/...'. */
  contentType: string
  /** Lightroom date; default '0000-00-00T00:00:00' (Lightroom reads it from the file). */
  captureDate?: string
  /** Add the new asset to this album. */
  albumId?: string
  /** Default: 'video' for video/* types, else 'image'. */
  subtype?: 'image' | 'video'
  /** The original's SHA-256 (64 hex); computed for Buffer bodies. Recorded in importSource. */
  sha256?: string
  /** Send If-None-Match with the sha256: a file Lightroom already has is not uploaded again. */
  skipIfExists?: boolean
  /** Bytes per part; default 20 MB (Adobe's sample), at most 200 MB (Lightroom's per-call limit). */
  partSize?: number
  /** Parts in flight at once; default 3. */
  parallelParts?: number
  signal?: AbortSignal
}

export interface UploadResult {
  assetId: string
  /** 'duplicate': Lightroom already had this sha256 (skipIfExists); `assetId` is that asset's. */
  status: 'created' | 'duplicate'
}

export interface AddToAlbumResult {
  added: string[]
  failed: Array<{ id: string, code: string | undefined, description: string | undefined }>
}

const MB = 1024 * 1024
export const MAX_PART_SIZE = 200 * MB
const DEFAULT_PART_SIZE = 20 * MB
const MIN_PART_SIZE = 64 * 1024
/** Lightroom's own limit per album call. */
export const ALBUM_BATCH = 50
const CONTENT_TYPE = /^(?:image\/jpeg|application\/octet-stream(?:;\s*video)?|video\/[\x21-\x7e]+)$/i

export async function uploadAsset (scope: CatalogScope, account: () => Promise<LightroomAccount>, options: UploadOptions): Promise<UploadResult> {
  const plan = checkUpload(options)
  const reader = new PartReader(options.body)
  try {
    // The first part is read before anything is created: a small body is checked whole.
    const first = await reader.read(Math.min(plan.size, plan.partSize))
    if (first.length < Math.min(plan.size, plan.partSize)) fail('body', `ended after ${reader.consumed} bytes; \`size\` says ${plan.size}`)
    if (plan.size <= plan.partSize && !(await reader.atEnd())) fail('body', `is longer than \`size\` (${plan.size} bytes)`)
    if (Buffer.isBuffer(options.body) || options.body instanceof Uint8Array) {
      const actual = createHash('sha256').update(options.body).digest('hex')
      if (plan.sha256 !== undefined && plan.sha256 !== actual) fail('sha256', 'does not match the body')
      plan.sha256 = actual
    }
    if (plan.skipIfExists && plan.sha256 === undefined) fail('skipIfExists', 'needs the sha256 of a streamed body')

    const me = await account()
    const status = me.entitlement?.status
    if (status !== 'trial' && status !== 'subscriber') {
      throw new LightroomNotEntitledError({ statusCode: 403, lightroomCode: 'LR_API_HTTP_ERROR', description: `the account's entitlement is "${String(status)}": only trial and subscriber accounts may upload`, method: 'PUT', path: '/v2/account', transient: false })
    }
    const assetId = randomUUID().replaceAll('-', '')
    const created = await createAsset(scope, assetId, me.id, plan)
    if (created !== undefined) return { assetId: created, status: 'duplicate' }
    await sendParts(scope, assetId, reader, first, plan)
    if (plan.albumId !== undefined) await addToAlbum(scope, plan.albumId, [assetId], plan.signal)
    return { assetId, status: 'created' }
  } finally {
    await reader.close()
  }
}

interface Plan {
  size: number
  fileName: string
  contentType: string
  subtype: 'image' | 'video'
  captureDate: string
  albumId: string | undefined
  sha256: string | undefined
  skipIfExists: boolean
  partSize: number
  parallelParts: number
  signal: AbortSignal | undefined
}

function checkUpload (options: UploadOptions): Plan {
  if (options === null || typeof options !== 'object') fail('options', 'must be an object')
  const body: unknown = options.body
  const isBytes = Buffer.isBuffer(body) || body instanceof Uint8Array
  if (!isBytes && (typeof body !== 'object' || body === null || typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function')) {
    fail('body', 'must be a Buffer, a Uint8Array or a readable stream')
  }
  const size = positiveInteger('size', options.size, -1, 1, Number.MAX_SAFE_INTEGER)
  if (isBytes && (body as Uint8Array).byteLength !== size) fail('body', `is ${(body as Uint8Array).byteLength} bytes; \`size\` says ${size}`)
  if (typeof options.fileName !== 'string' || options.fileName.trim() === '' || options.fileName.length > 255 || hasControlOrSlash(options.fileName)) {
    fail('fileName', 'must be a file name (no path, at most 255 characters)')
  }
  if (typeof options.contentType !== 'string' || !CONTENT_TYPE.test(options.contentType)) {
    fail('contentType', "must be 'image/jpeg', 'application/octet-stream' or a 'video/...' type")
  }
  const video = /^video\/|;\s*video$/i.test(options.contentType)
  if (options.subtype !== undefined && options.subtype !== 'image' && options.subtype !== 'video') fail('subtype', "must be 'image' or 'video'")
  if (options.sha256 !== undefined && (typeof options.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(options.sha256))) fail('sha256', 'must be 64 lowercase hex digits')
  if (options.skipIfExists !== undefined && typeof options.skipIfExists !== 'boolean') fail('skipIfExists', 'must be a boolean')
  return {
    size,
    fileName: options.fileName,
    contentType: options.contentType,
    subtype: options.subtype ?? (video ? 'video' : 'image'),
    captureDate: options.captureDate === '0000-00-00T00:00:00' ? options.captureDate : optionalDate('captureDate', options.captureDate) ?? '0000-00-00T00:00:00',
    albumId: options.albumId === undefined ? undefined : checkId('albumId', options.albumId),
    sha256: options.sha256,
    skipIfExists: options.skipIfExists === true,
    partSize: positiveInteger('partSize', options.partSize, DEFAULT_PART_SIZE, MIN_PART_SIZE, MAX_PART_SIZE),
    parallelParts: positiveInteger('parallelParts', options.parallelParts, 3, 1, 8),
    signal: optionalSignal('signal', options.signal)
  }
}

function hasControlOrSlash (name: string): boolean {
  return [...name].some((char) => char.charCodeAt(0) < 0x20 || char === '/' || char === '\\')
}

/** PUT the asset; resolves the existing asset's id when Lightroom already has the sha256, else undefined. */
async function createAsset (scope: CatalogScope, assetId: string, accountId: string, plan: Plan): Promise<string | undefined> {
  const now = new Date().toISOString()
  const importSource = {
    fileName: plan.fileName,
    fileSize: plan.size,
    ...(plan.sha256 === undefined ? {} : { sha256: plan.sha256 }),
    // Adobe asks partners to put their API key here: Lightroom then shows where the photo came from.
    importedOnDevice: scope.transport.apiKey,
    importedBy: accountId,
    importTimestamp: now
  }
  const body = JSON.stringify({ subtype: plan.subtype, payload: { captureDate: plan.captureDate, userCreated: now, userUpdated: now, importSource } })
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (plan.skipIfExists) headers['if-none-match'] = plan.sha256!
  const answer = await scope.call(`assets/${assetId}`, { method: 'PUT', headers, body, signal: plan.signal })
  if (answer.status >= 200 && answer.status < 300) return undefined
  const error = failure(answer, 'PUT')
  if (!(error instanceof LightroomAlreadyExistsError)) throw error
  // Our id is fresh and random: "already exists" for it can only be our own earlier attempt,
  // retried after its answer was lost. A 412 means the sha256 is taken: by whom?
  if (answer.status !== 412) return undefined
  const first = await assets(scope, { sha256: plan.sha256!, limit: 1, signal: plan.signal }).next()
  if (first.done === true) throw error
  return first.value.id === assetId ? undefined : first.value.id
}

async function sendParts (scope: CatalogScope, assetId: string, reader: PartReader, first: Buffer, plan: Plan): Promise<void> {
  const inFlight = new Set<Promise<void>>()
  let failed: unknown
  const send = (part: Buffer, start: number): void => {
    const single = part.length === plan.size
    const headers: Record<string, string> = { 'content-type': plan.contentType }
    // Lightroom asks for Content-Range only when the original does not go in one call.
    if (!single) headers['content-range'] = `bytes ${start}-${start + part.length - 1}/${plan.size}`
    const put = scope.call(`assets/${assetId}/master`, { method: 'PUT', headers, body: part, signal: plan.signal, untimed: true })
      .then((answer) => { if (answer.status < 200 || answer.status >= 300) throw failure(answer, 'PUT') })
      .catch((error: unknown) => { failed ??= error })
      .finally(() => { inFlight.delete(put) })
    inFlight.add(put)
  }
  let part = first
  let start = 0
  try {
    for (;;) {
      const end = start + part.length
      if (end === plan.size) {
        // The last part completes the original: only once every earlier part is in, and the body is known to end here.
        if (!(await reader.atEnd())) fail('body', `is longer than \`size\` (${plan.size} bytes)`, assetId)
        await Promise.all(inFlight)
        if (failed !== undefined) throw failed
        send(part, start)
        await Promise.all(inFlight)
        if (failed !== undefined) throw failed
        return
      }
      send(part, start)
      while (inFlight.size >= plan.parallelParts) await Promise.race(inFlight)
      if (failed !== undefined) throw failed
      start = end
      part = await reader.read(Math.min(plan.partSize, plan.size - start))
      if (part.length < Math.min(plan.partSize, plan.size - start)) fail('body', `ended after ${reader.consumed} bytes; \`size\` says ${plan.size}`, assetId)
    }
  } catch (error) {
    // Parts already on their way finish (or fail) before the caller hears of it.
    await Promise.all(inFlight)
    throw error
  }
}

export async function addToAlbum (scope: CatalogScope, albumId: string, assetIds: string[], signal?: AbortSignal): Promise<AddToAlbumResult> {
  checkId('albumId', albumId)
  const ids = [...new Set(checkIds('assetIds', assetIds, 100_000))]
  optionalSignal('signal', signal)
  const result: AddToAlbumResult = { added: [], failed: [] }
  for (let at = 0; at < ids.length; at += ALBUM_BATCH) {
    const batch = ids.slice(at, at + ALBUM_BATCH)
    const body = JSON.stringify({ resources: batch.map((id) => ({ id })) })
    const answer = await scope.call(`albums/${albumId}/assets`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body, signal })
    // 201 when at least one went in; 403 with per-asset errors when none did.
    const perAsset = isJsonObject(answer.json) && Array.isArray(answer.json['errors']) ? answer.json['errors'] : undefined
    if ((answer.status < 200 || answer.status >= 300) && !(answer.status === 403 && perAsset !== undefined)) throw failure(answer, 'PUT')
    const refused = new Map<string, { code: string | undefined, description: string | undefined }>()
    for (const entry of perAsset ?? []) {
      if (isJsonObject(entry) && typeof entry['id'] === 'string') refused.set(entry['id'], readErrorBody(entry))
    }
    for (const id of batch) {
      const why = refused.get(id)
      if (why === undefined) result.added.push(id)
      else result.failed.push({ id, ...why })
    }
  }
  return result
}
