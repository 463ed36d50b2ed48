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
