/**
 * Calls scoped to the user's catalog (`/v2/catalogs/{catalog_id}/...`). The catalog id is read once
 * per client from /v2/catalog; Adobe documents that it can change, answered by a 404 whose errors
 * say the catalog does not exist: then /v2/catalog is read again, once, and the call repeated.
 */
import { createHash } from 'node:crypto'
import { LightroomApiError } from '../errors.js'
import { isJsonObject } from './body.js'
import { catalogGone, httpError, invalidResponse } from './failures.js'
import type { Answer, Exchange, LightroomTransport } from './transport.js'
import type { LightroomCatalog } from './types.js'

export type ScopedExchange = Omit<Exchange, 'url' | 'auth'>

/**
 * Catalog ids known across the short-lived clients of one app (one per request), keyed by a hash
 * of the access token, so that a route serving photos does not read /v2/catalog on every request.
 * Bounded; a refreshed token simply misses once.
 */
export class CatalogIdCache {
  readonly #ids = new Map<string, string>()
  readonly #max: number

  constructor (max = 10_000) {
    this.#max = max
  }

  get (key: string): string | undefined {
    return this.#ids.get(key)
  }

  set (key: string, id: string): void {
    if (this.#ids.size >= this.#max) this.#ids.delete(this.#ids.keys().next().value as string)
    this.#ids.set(key, id)
  }

  /** Lightroom said this id is gone: forget it for every token. */
  forgetId (id: string): void {
    for (const [key, value] of this.#ids) if (value === id) this.#ids.delete(key)
  }
}

export function tokenKey (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

export class CatalogScope {
  readonly transport: LightroomTransport
  readonly #shared: { cache: CatalogIdCache, token: () => Promise<string> } | undefined
  #catalogId: Promise<string> | undefined

  constructor (transport: LightroomTransport, shared?: { cache: CatalogIdCache, token: () => Promise<string> }) {
    this.transport = transport
    this.#shared = shared
  }

  /** GET /v2/catalog; null when the user has none (Lightroom's own JSON 404). */
  async readCatalog (signal?: AbortSignal): Promise<LightroomCatalog | null> {
    const answer = await this.transport.exchange({ method: 'GET', url: `${this.transport.origin}/v2/catalog`, auth: true, signal })
    // A gateway's HTML 404 means a wrong base URL, not a missing catalog: only Lightroom's JSON 404 is "none".
    if (answer.status === 404 && isJsonObject(answer.json)) return null
    const body = expectJson(answer, 'GET')
    if (typeof body['id'] !== 'string') throw invalidResponse('GET', answer.path, 'the body is not a Lightroom resource')
    return body as LightroomCatalog
  }

  async catalogId (signal?: AbortSignal): Promise<string> {
    const pending = this.#catalogId ?? (this.#catalogId = this.#readId(signal))
    // A failed read is not remembered: the next call asks again.
    pending.catch(() => { if (this.#catalogId === pending) this.#catalogId = undefined })
    return await pending
  }

  async #readId (signal: AbortSignal | undefined): Promise<string> {
    const key = this.#shared === undefined ? undefined : tokenKey(await this.#shared.token())
    const known = key === undefined ? undefined : this.#shared?.cache.get(key)
    if (known !== undefined) return known
    const catalog = await this.readCatalog(signal)
    if (catalog === null) {
      throw new LightroomApiError({ statusCode: 404, lightroomCode: '1000', description: 'the user has no Lightroom catalog yet (they must open Lightroom once)', path: '/v2/catalog', transient: false })
    }
    if (!/^[0-9a-f]{32}$/.test(catalog.id)) throw invalidResponse('GET', '/v2/catalog', 'the catalog id is not 32 hex digits')
    if (key !== undefined) this.#shared?.cache.set(key, catalog.id)
    return catalog.id
  }

  /** The absolute URL of a catalog-relative path such as `assets/{id}`. */
  async url (relative: string, signal?: AbortSignal): Promise<string> {
    return `${this.transport.origin}/v2/catalogs/${await this.catalogId(signal)}/${relative}`
  }

  /** An exchange on a catalog-relative path, repeated once under a re-read catalog id when Lightroom says it changed. */
  async call (relative: string, ex: ScopedExchange): Promise<Answer> {
    const first = await this.transport.exchange({ ...ex, url: await this.url(relative, ex.signal), auth: true })
    if (!catalogGone(first.status, first.json)) return first
    const gone = await this.#catalogId
    if (gone !== undefined) this.#shared?.cache.forgetId(gone)
    this.#catalogId = undefined
    return await this.transport.exchange({ ...ex, url: await this.url(relative, ex.signal), auth: true })
  }
}

/** A 2xx answer's JSON object; anything else throws the matching error. */
export function expectJson (answer: Answer, method: string): Record<string, unknown> {
  if (answer.status < 200 || answer.status >= 300) throw httpError(answer, method, answer.path, answer.sent)
  if (!isJsonObject(answer.json)) {
    const why = answer.text.trim() === '' ? 'the body is empty' : answer.json === undefined ? 'the body is not JSON' : 'the body is not a Lightroom resource'
    throw invalidResponse(method, answer.path, why)
  }
  return answer.json
}

/** A non-2xx answer as the error it is. */
export function failure (answer: Answer, method: string): LightroomApiError {
  return httpError(answer, method, answer.path, answer.sent)
}
