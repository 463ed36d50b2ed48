import type { FastifyInstance } from 'fastify'
import { request } from 'undici'

export interface Page {
  url: string
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  location: string | undefined
}

/**
 * A tiny browser for tests: one cookie jar for the app's origin, redirects followed by hand. Requests
 * to the app go through `app.inject`; requests anywhere else (the mock IMS) go over real HTTP.
 */
export class Browser {
  readonly cookies = new Map<string, string>()
  readonly history: Page[] = []
  readonly #app: FastifyInstance
  readonly #appOrigin: string

  constructor (app: FastifyInstance, appOrigin: string) {
    this.#app = app
    this.#appOrigin = appOrigin
  }

  cookieHeader (): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  #remember (setCookie: string | string[] | undefined): void {
    for (const line of typeof setCookie === 'string' ? [setCookie] : setCookie ?? []) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((attribute) => {
        const [key = '', val = ''] = attribute.trim().split('=')
        if (key.toLowerCase() === 'max-age') return Number(val) <= 0
        if (key.toLowerCase() === 'expires') return Date.parse(val) <= Date.now()
        return false
      })
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  async request (method: 'GET' | 'POST', url: string, init: { headers?: Record<string, string>, body?: string } = {}): Promise<Page> {
    const absolute = new URL(url, this.#appOrigin)
    let page: Page
    if (absolute.origin === this.#appOrigin) {
      const response = await this.#app.inject({
        method,
        url: `${absolute.pathname}${absolute.search}`,
        headers: { accept: 'text/html', ...(this.cookies.size > 0 ? { cookie: this.cookieHeader() } : {}), ...init.headers },
        ...(init.body === undefined ? {} : { payload: init.body })
      })
      this.#remember(response.headers['set-cookie'])
      page = { url: absolute.href, status: response.statusCode, headers: response.headers as Page['headers'], body: response.body, location: response.headers.location as string | undefined }
    } else {
      const response = await request(absolute, { method, headers: { accept: 'text/html', ...init.headers }, ...(init.body === undefined ? {} : { body: init.body }) })
      const body = await response.body.text()
      page = { url: absolute.href, status: response.statusCode, headers: response.headers, body, location: response.headers.location as string | undefined }
    }
    this.history.push(page)
    return page
  }

  async get (url: string, headers?: Record<string, string>): Promise<Page> {
    return await this.request('GET', url, headers === undefined ? {} : { headers })
  }

  /** GETs url and follows redirects until a non-redirect answer (or `stopAt` matches a Location). */
  async follow (url: string, options: { stopAt?: (location: URL) => boolean, maxHops?: number } = {}): Promise<Page> {
    let page = await this.get(url)
    for (let hop = 0; hop < (options.maxHops ?? 10); hop++) {
      if (page.status < 300 || page.status >= 400 || page.location === undefined) return page
      const next = new URL(page.location, page.url)
      if (options.stopAt?.(next) === true) return page
      page = await this.get(next.href)
    }
    throw new Error('too many redirects')
  }
}
