/**
 * A user's Lightroom library in the mock: albums and assets across years, images and videos, made
 * deterministically from the user's `sub` (the same every run) and only when first asked for, so
 * that creating the mock stays instant however large a library is configured. Uploads and album
 * adds change it like Lightroom would.
 */
import { createHash } from 'node:crypto'
import { pictureOf } from './jpeg.js'

export interface MockAsset {
  id: string
  subtype: 'image' | 'video'
  created: string
  updated: string
  payload: Record<string, unknown> & { captureDate: string }
  picture: number
  /** Set by an upload: complete once every byte of the original arrived. */
  upload?: MockUpload
  /** Generated renditions ('2560', 'fullsize') and when they are ready (epoch ms). */
  generated: Map<string, number>
}

export interface MockUpload {
  contentType: string | undefined
  total: number | undefined
  parts: Map<number, Buffer>
  master: Buffer | undefined
}

export interface MockAlbum {
  id: string
  subtype: string
  name: string
  created: string
  updated: string
  serviceId?: string
  members: Set<string>
  /** Order of addition: album_asset `order` values. */
  orderOf: Map<string, number>
}

export interface LibrarySettings {
  assets: number
  albums: number
  seed: string
  apiKey: string
}

const ALBUM_NAMES = ['Family', 'Iceland 2019', 'Portfolio', 'Weddings', 'Street', 'Travel', 'Best of 2023', 'Prints', 'Kyoto', 'Family', 'Archive', 'Birds']
/** From 2025-06-30T18:00:00Z back over about ten years. */
const NEWEST_CAPTURE_MS = Date.UTC(2025, 5, 30, 18, 0, 0)
const SPAN_MS = 10 * 365 * 86_400_000

export function hex32 (...parts: string[]): string {
  return createHash('sha256').update(parts.join(':')).digest('hex').slice(0, 32)
}

/** Lightroom-style capture dates: no zone, whole seconds. */
export function lightroomDate (ms: number): string {
  return new Date(ms).toISOString().slice(0, 19)
}

/** A small, seeded PRNG (mulberry32): the library must be the same on every run. */
function prng (seed: string): () => number {
  let state = Number.parseInt(hex32('seed', seed).slice(0, 8), 16)
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class MockLibrary {
  readonly assets = new Map<string, MockAsset>()
  readonly albums = new Map<string, MockAlbum>()
  #sorted: MockAsset[] | undefined

  constructor (sub: string, settings: LibrarySettings) {
    const random = prng(`${settings.seed}:${sub}`)
    const step = SPAN_MS / Math.max(1, settings.assets)
    let capture = NEWEST_CAPTURE_MS
    for (let i = 0; i < settings.assets; i++) {
      // About one in eight shares the previous capture second (bursts): pages must cope with ties.
      if (i === 0 || random() >= 0.125) capture -= Math.round(1000 + random() * 2 * step)
      const id = hex32('asset', settings.seed, sub, String(i))
      const video = random() < 0.08
      const captureDate = lightroomDate(capture)
      const imported = capture + Math.round(random() * 30 * 86_400_000)
      const updated = imported + Math.round(random() * 400 * 86_400_000)
      this.assets.set(id, {
        id,
        subtype: video ? 'video' : 'image',
        created: new Date(imported).toISOString(),
        updated: new Date(Math.min(updated, NEWEST_CAPTURE_MS + 30 * 86_400_000)).toISOString(),
        picture: pictureOf(id),
        generated: new Map(),
        payload: {
          captureDate,
          userCreated: new Date(imported).toISOString(),
          userUpdated: new Date(imported).toISOString(),
          importSource: {
            fileName: video ? `MOV_${String(1000 + i).padStart(5, '0')}.MP4` : `IMG_${String(1000 + i).padStart(5, '0')}.JPG`,
            fileSize: Math.round(2_000_000 + random() * 28_000_000),
            originalWidth: 6000,
            originalHeight: 4000,
            sha256: createHash('sha256').update(id).digest('hex'),
            importedOnDevice: 'Lightroom Desktop',
            importedBy: hex32('account', sub),
            importTimestamp: new Date(imported).toISOString()
          },
          develop: { croppedWidth: 6000, croppedHeight: 4000 },
          ...(video ? { video: { duration: Math.round(5 + random() * 120), frameRate: 30 } } : {})
        }
      })
    }
    const ids = [...this.assets.keys()]
    const holding = Math.max(1, settings.albums - 1)
    for (let a = 0; a < settings.albums; a++) {
      const id = hex32('album', settings.seed, sub, String(a))
      // The last album is a set: it holds albums, not assets. Two are a partner's projects.
      const subtype = a === settings.albums - 1 && a > 0 ? 'collection_set' : a % 5 === 3 ? 'project' : 'collection'
      const album: MockAlbum = {
        id,
        subtype,
        name: ALBUM_NAMES[a % ALBUM_NAMES.length]!,
        created: '2021-06-01T09:30:00.000Z',
        updated: '2024-02-15T17:45:12.345Z',
        ...(subtype === 'project' ? { serviceId: settings.apiKey } : {}),
        members: new Set(),
        orderOf: new Map()
      }
      if (subtype !== 'collection_set') {
        ids.forEach((assetId, index) => { if (index % holding === a) addMember(album, assetId) })
      }
      this.albums.set(id, album)
    }
  }

  /** Every asset with a complete original, newest capture first (ties by id). */
  sorted (): MockAsset[] {
    this.#sorted ??= [...this.assets.values()]
      .filter((asset) => asset.upload === undefined || asset.upload.master !== undefined)
      .sort((a, b) => a.payload.captureDate < b.payload.captureDate ? 1 : a.payload.captureDate > b.payload.captureDate ? -1 : a.id < b.id ? 1 : -1)
    return this.#sorted
  }

  /** After an upload completes: the order must be computed again. */
  changed (): void {
    this.#sorted = undefined
  }
}

export function addMember (album: MockAlbum, assetId: string): void {
  album.members.add(assetId)
  album.orderOf.set(assetId, album.orderOf.size)
}
