/**
 * Public types of the mock Lightroom API, apart from the server so that the
 * `testing` entry point can re-export them without pulling code.
 */
import type { MockIms } from '../ims/types.js'

export type MockLightroomEntitlement = 'created' | 'trial' | 'trial_expired' | 'subscriber' | 'subscriber_expired'

/** What Lightroom knows of a user beyond IMS; names and email default to the mock IMS user's. */
export interface MockLightroomUser {
  /**
   * Default true. False: GET /v2/catalog answers 404 code 1000, as for a user who never opened Lightroom.
   * Users whose entitlement is not trial or subscriber get 403 `4301` from the catalog and below.
   */
  hasCatalog?: boolean
  /** Default 'subscriber'. */
  entitlement?: MockLightroomEntitlement
  /** Also splits into first_name / last_name. */
  fullName?: string
  email?: string
  /** Default 'US'. */
  country?: string
}

export type MockLightroomEndpoint =
  | 'health' | 'account' | 'catalog'
  | 'albums' | 'albumAssets' | 'addToAlbum' | 'assets' | 'asset' | 'createAsset' | 'master' | 'rendition' | 'generateRenditions'

export type MockRenditionType = 'thumbnail2x' | '640' | '1280' | '2048' | '2560' | 'fullsize'

/** How each user's seeded library looks (made from their `sub`, the same on every run, built on first use). */
export interface MockLibrarySettings {
  /** Default 2500, spread over ten years, newest 2025-06-30; about 8% videos, some sharing a capture second. */
  assets?: number
  /** Default 12: collections, two projects and one collection set; two share the name 'Family'. */
  albums?: number
  /** Changes every id and date. Default 'lightroom'. */
  seed?: string
}

/** What a user's library holds, for assertions. */
export interface MockLightroomLibrary {
  readonly catalogId: string
  albums (): Array<{ id: string, name: string, subtype: string, assets: number }>
  /** Assets with a complete original, newest capture first. */
  assetIds (): string[]
  /** The assembled original of an uploaded asset, once every part arrived. */
  master (assetId: string): Buffer | undefined
  /** Whether an asset exists (also one still waiting for its original). */
  hasAsset (assetId: string): boolean
  /** The ids in an album. */
  albumAssetIds (albumId: string): string[]
}

export type MockLightroomFault =
  /**
   * That status. 429 has an empty body, as Lightroom's; any other status gets a prefixed JSON error
   * `{ code: '<status>', description }` (the mock's own choice: real 5xx bodies are undocumented).
   * `body` replaces the body as is.
   */
  | { status: number, retryAfter?: number, body?: string }
  /** Answer normally, but only after this delay. */
  | { delayMs: number }
  /** Destroy the socket without answering. */
  | { reset: true }

export interface MockLightroomOptions {
  /** Tokens are checked against it: only tokens it issued, still live, work. */
  ims: MockIms
  /** Default '127.0.0.1'. */
  host?: string
  /** Default 0: a free port. */
  port?: number
  /** X-API-Key values accepted. Default: the mock IMS's client ids. */
  apiKeys?: string[]
  /** Per IMS `sub`. Users left out get the defaults (a subscriber with a catalog). */
  users?: Record<string, MockLightroomUser>
  library?: MockLibrarySettings
  /** Bytes of each rendition type. Defaults grow with the type: 24 KB, 80 KB, 260 KB, 650 KB, 1 MB, 4 MB. */
  renditionSizes?: Partial<Record<MockRenditionType, number>>
  /** How long after POST .../renditions a '2560' or 'fullsize' becomes available. Default 2000. */
  renditionDelayMs?: number
  /**
   * How an unknown, expired or revoked token is refused: 403 `{"error_code":"4300"}` (default, as
   * Adobe's upload guide documents) or 401 `{"error_code":"401013"}` (the gateway's answer). A
   * request with no token at all always gets the 401.
   */
  rejectedTokenStatus?: 401 | 403
}

/** One request as the mock saw it. */
export interface MockLightroomRequest {
  endpoint: MockLightroomEndpoint | 'unknown'
  method: string
  /** The request target, query included. */
  path: string
  apiKey: string | undefined
  /** The Accept header sent. */
  accept: string | undefined
  /** The bearer token sent, if any (the mock keeps it so tests can tell which token was used). */
  accessToken: string | undefined
}

export interface MockLightroom {
  /** 'http://127.0.0.1:PORT': pass it as the client's `baseUrl`. */
  readonly origin: string
  readonly apiKeys: string[]
  /**
   * Requests per endpoint ('health', 'account', 'catalog', 'unknown'), per endpoint and answer status
   * ('account:401', 'catalog:404'; 'account:reset' when the connection ended before an answer, by a
   * reset fault or a client giving up), and in all ('*'). Faulted requests count too.
   */
  count (key: string): number
  resetCounts (): void
  /** Every request so far, oldest first. */
  requests (): MockLightroomRequest[]
  /**
   * The next `times` (default 1) requests to `endpoint` get this fault; '*' queues for any endpoint.
   * An endpoint's own queue is used before '*'. Faults are played before any authentication check.
   */
  fail (endpoint: MockLightroomEndpoint | '*', fault: MockLightroomFault, times?: number): void
  clearFaults (): void
  /** Replaces what Lightroom knows of a user (entitlement changed, catalog created). */
  setUser (sub: string, user: MockLightroomUser): void
  /** The 32-hex account id the mock derives from a `sub`. */
  accountId (sub: string): string
  /** The user's current 32-hex catalog id (derived from the `sub` until changeCatalogId). */
  catalogId (sub: string): string
  /** Gives the user a new catalog id, keeping the library: the old id then answers 404 "catalog does not exist". */
  changeCatalogId (sub: string): string
  /** The user's library (built on first use). */
  library (sub: string): MockLightroomLibrary
  close (): Promise<void>
}
