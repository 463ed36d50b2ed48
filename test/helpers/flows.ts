/**
 * Building blocks for the reliability and security suites: sign-in of a chosen user (so many users
 * can sign in at once), the first leg of a login as raw material for forged callbacks, Set-Cookie
 * parsing, and scanners for leaked secrets and stack traces.
 */
import type { FastifyInstance } from 'fastify'
import { parseSessionCookie } from '../../lib/auth/session.js'
import type { Browser, Page } from './browser.js'
import type { Harness } from './setup.js'

export const LOGIN = '/auth/lightroom/login'
export const CALLBACK = '/auth/lightroom/callback'
export const LOGOUT = '/auth/lightroom/logout'

/** Cookie names for an https redirect URI (`__Host-` prefixed) or a plain-http one. */
export function cookieNames (secure = true): { session: string, state: string, verifier: string } {
  const prefix = secure ? '__Host-' : ''
  return { session: `${prefix}lr_session`, state: `${prefix}lr_oauth_state`, verifier: `${prefix}lr_oauth_verifier` }
}

/** The store key of a signed session cookie's record (the signature, after the last '.', is not checked here). */
export function sessionKeyOfCookie (signed: string): string {
  const parsed = parseSessionCookie(signed.slice(0, signed.lastIndexOf('.')))
  if (parsed === undefined) throw new Error('not a session cookie')
  return parsed.key
}

export interface SetCookie {
  raw: string
  name: string
  value: string
  /** Attribute names lower-cased; valueless attributes (HttpOnly, Secure) map to true. */
  attributes: Map<string, string | true>
}

export function setCookies (headers: Record<string, unknown>): SetCookie[] {
  const header = headers['set-cookie']
  const lines = header === undefined ? [] : ([] as unknown[]).concat(header).map(String)
  return lines.map((raw) => {
    const [pair = '', ...rest] = raw.split(';')
    const eq = pair.indexOf('=')
    const attributes = new Map<string, string | true>()
    for (const part of rest) {
      const at = part.indexOf('=')
      if (at === -1) attributes.set(part.trim().toLowerCase(), true)
      else attributes.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim())
    }
    return { raw, name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes }
  })
}

export interface StartedLogin {
  /** The `state` sent to IMS (and kept in the state cookie). */
  state: string
  verifier: string
  authorizeUrl: URL
  /** `name=value; name=value` of the two flow cookies, as the browser would send them back. */
  cookieHeader: string
  setCookies: SetCookie[]
}

/** The login leg alone, through app.inject: a genuine state and verifier cookie pair, no IMS call. */
export async function startLogin (app: FastifyInstance, options: { returnTo?: string, secure?: boolean } = {}): Promise<StartedLogin> {
  const names = cookieNames(options.secure ?? true)
  const url = options.returnTo === undefined ? LOGIN : `${LOGIN}?returnTo=${encodeURIComponent(options.returnTo)}`
  const response = await app.inject({ url })
  if (response.statusCode !== 302) throw new Error(`login answered ${response.statusCode}`)
  const authorizeUrl = new URL(String(response.headers.location))
  const cookies = setCookies(response.headers)
  const state = cookies.find((c) => c.name === names.state)?.value
  const verifier = cookies.find((c) => c.name === names.verifier)?.value
  if (state === undefined || verifier === undefined) throw new Error('login set no flow cookies')
  return { state, verifier, authorizeUrl, cookieHeader: `${names.state}=${state}; ${names.verifier}=${verifier}`, setCookies: cookies }
}

/** Has the mock IMS authorize a login for a chosen user (login_hint) and returns the callback URL it redirects to. */
export async function authorizeAs (browser: Browser, authorizeUrl: URL, sub: string): Promise<URL> {
  const url = new URL(authorizeUrl)
  url.searchParams.set('login_hint', sub)
  const atIms = await browser.get(url.href)
  if (atIms.status !== 302 || atIms.location === undefined) throw new Error(`authorize answered ${atIms.status}`)
  return new URL(atIms.location)
}

/**
 * Signs a chosen user in with a fresh browser. Unlike setup.ts's signIn it does not depend on the
 * mock's "current user", so any number can run at once.
 */
export async function signInUser (h: Harness, sub: string, returnTo?: string): Promise<{ browser: Browser, cookie: string, done: Page }> {
  const browser = h.browser()
  const login = await browser.get(returnTo === undefined ? LOGIN : `${LOGIN}?returnTo=${encodeURIComponent(returnTo)}`)
  const callback = await authorizeAs(browser, new URL(login.location!), sub)
  const done = await browser.get(`${callback.pathname}${callback.search}`)
  if (done.status !== 303) throw new Error(`sign-in of ${sub} ended with ${done.status}`)
  return { browser, cookie: browser.cookieHeader(), done }
}

/** Runs `task` over `items` with at most `width` in flight, keeping the results in order. */
export async function inBatches<T, R> (items: readonly T[], width: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = []
  for (let start = 0; start < items.length; start += width) {
    const chunk = items.slice(start, start + width)
    results.push(...await Promise.all(chunk.map(async (item, offset) => await task(item, start + offset))))
  }
  return results
}

/**
 * A stack trace or a source path reaching a client or a log meant for it: V8 frames ("    at fn
 * (file:line:col)"), TypeScript/JavaScript source positions, Node internals.
 */
export const STACK_TRACE = /(?:^|\n|\\n)\s*at [^\n]*?(?:\(|\s)(?:file:|node:|\/)|\.[cm]?[tj]s:\d+|node:internal\//

/** The secrets (by a short, non-revealing label) found in any of the texts. */
export function leakedSecrets (texts: readonly string[], secrets: readonly string[]): string[] {
  const haystack = texts.join('\n')
  return [...new Set(secrets)].filter((secret) => secret.length > 0 && haystack.includes(secret)).map((secret) => `${secret.slice(0, 6)}… (${secret.length} chars)`)
}
