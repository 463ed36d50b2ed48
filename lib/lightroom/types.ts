/**
 * The Lightroom resources this package reads itself. Only the fields we know
 * of are typed; Lightroom adds fields over time, so every object stays open.
 */

export type EntitlementStatus = 'created' | 'trial' | 'trial_expired' | 'subscriber' | 'subscriber_expired'

export interface LightroomStorage {
  /** Bytes. */
  used: number
  /** Bytes. */
  limit: number
  display_limit?: number
  warn?: number
  [field: string]: unknown
}

export interface LightroomEntitlement {
  /** Only `trial` and `subscriber` may use the partner APIs; a newer value is passed through. */
  status: EntitlementStatus | (string & {})
  trial?: { start?: string, end?: string, [field: string]: unknown }
  current_subs?: Record<string, unknown>
  storage: LightroomStorage
  [field: string]: unknown
}

/** GET /v2/account. */
export interface LightroomAccount {
  base: string
  /** 32 hex digits; Lightroom's own account id, not the IMS `sub`. */
  id: string
  type: 'account'
  email: string
  full_name: string
  first_name: string
  last_name: string
  country: string
  created?: string
  updated?: string
  entitlement: LightroomEntitlement
  [field: string]: unknown
}

export interface LightroomLink {
  href: string
  [field: string]: unknown
}

/** GET /v2/catalog: a user has at most one. */
export interface LightroomCatalog {
  base: string
  /** 32 hex digits; the `{catalog_id}` of every other catalog-scoped path. */
  id: string
  type: 'catalog'
  subtype: 'lightroom' | (string & {})
  created?: string
  updated?: string
  payload: { name: string, [field: string]: unknown }
  links: { self: LightroomLink, [rel: string]: LightroomLink }
  [field: string]: unknown
}

/** What every resource carries; Lightroom adds fields over time, so every object stays open. */
export interface LightroomResource {
  /** 32 hex digits. */
  id: string
  type?: string
  subtype?: string
  created?: string
  updated?: string
  payload?: Record<string, unknown>
  links?: Record<string, LightroomLink>
  [field: string]: unknown
}

/** An album: `subtype` 'collection', 'collection_set', 'project', 'project_set'. */
export interface LightroomAlbum extends LightroomResource {
  type?: 'album'
  payload?: { name?: string, userCreated?: string, userUpdated?: string, parent?: { id: string }, cover?: { id: string }, [field: string]: unknown }
}

export interface LightroomImportSource {
  fileName?: string
  fileSize?: number
  originalWidth?: number
  originalHeight?: number
  sha256?: string
  importedOnDevice?: string
  importedBy?: string
  importTimestamp?: string
  [field: string]: unknown
}

/** An asset: `subtype` 'image' or 'video'. */
export interface LightroomAsset extends LightroomResource {
  type?: 'asset'
  payload?: {
    /** Lightroom date string; '0000-00-00T00:00:00' when unknown. */
    captureDate?: string
    userCreated?: string
    userUpdated?: string
    importSource?: LightroomImportSource
    develop?: Record<string, unknown>
    video?: Record<string, unknown>
    [field: string]: unknown
  }
}

/** An item of albumAssets(): the asset itself, its album entry (order, cover) beside it. */
export interface LightroomAlbumAsset extends LightroomAsset {
  albumAsset: { id: string, payload?: { order?: string, cover?: boolean, [field: string]: unknown }, links?: Record<string, LightroomLink> }
}
