/**
 * What the mock Lightroom answers: account and catalog resources shaped like
 * lr.adobe.io's, its error bodies, and the `while (1) {}` prefix on every one.
 */
import { createHash } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { MockImsUser } from '../ims/types.js'
import { sendText } from '../shared/http.js'
import type { MockLightroomEntitlement, MockLightroomUser } from './types.js'

/** Lightroom's anti-JSON-hijacking prefix, on success and error bodies alike. */
export const HIJACK_PREFIX = 'while (1) {}\n'

export const INVALID_API_KEY = { code: '403003', description: 'Api Key is invalid' }
export const INVALID_TOKEN = { error_code: '401013', message: 'Oauth token is not valid' }
export const NOT_FOUND = { code: 1000, description: 'Resource not found' }
/** Adobe's upload guide: what an expired (or revoked) access token gets. */
export const EXPIRED_TOKEN = { error_code: '4300', message: 'Access is forbidden' }
/** The account may not use the partner APIs (not trial or subscriber). */
export const ACCOUNT_STATE = { error_code: '4301', message: 'Account state is not valid' }

const DAY_MS = 86_400_000
const GIB = 1024 ** 3
/** Fixed, so bodies are stable across runs. */
const CREATED = '2021-06-01T09:30:00.000Z'
const UPDATED = '2024-02-15T17:45:12.345Z'

export function sendLightroomJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendText(res, status, HIJACK_PREFIX + JSON.stringify(body), 'application/json;charset=utf-8', headers)
}

/** The mock's own error body for a status with no documented one. */
export function statusError (status: number): { code: string, description: string } {
  return { code: String(status), description: STATUS_CODES[status] ?? 'Error' }
}

/** Stable 32-hex ids per user, like Lightroom's (which are not the IMS `sub`). */
export function hexId (kind: 'account' | 'catalog', sub: string): string {
  return createHash('sha256').update(`${kind}:${sub}`).digest('hex').slice(0, 32)
}

export function healthBody (): Record<string, unknown> {
  return { version: 'mock-lightroom', status: 'ok' }
}

interface Names {
  full: string
  first: string
  last: string
}

function namesOf (imsUser: MockImsUser, user: MockLightroomUser): Names {
  const full = user.fullName ?? imsUser.name ?? [imsUser.givenName, imsUser.familyName].filter(Boolean).join(' ')
  const [first = '', ...rest] = full.split(' ')
  if (user.fullName !== undefined) return { full, first, last: rest.join(' ') }
  return { full, first: imsUser.givenName ?? first, last: imsUser.familyName ?? rest.join(' ') }
}

export function accountBody (origin: string, imsUser: MockImsUser, user: MockLightroomUser, now: number): Record<string, unknown> {
  const id = hexId('account', imsUser.sub)
  const names = namesOf(imsUser, user)
  return {
    base: `${origin}/v2/`,
    id,
    type: 'account',
    created: CREATED,
    updated: UPDATED,
    email: user.email ?? imsUser.email ?? `${imsUser.sub.split('@')[0]?.toLowerCase()}@example.com`,
    full_name: names.full,
    first_name: names.first,
    last_name: names.last,
    wcd_guid: id,
    country: user.country ?? 'US',
    config: {},
    entitlement: entitlement(user.entitlement ?? 'subscriber', now),
    links: { self: { href: `v2/accounts/${id}` } }
  }
}

function entitlement (status: MockLightroomEntitlement, now: number): Record<string, unknown> {
  const iso = (ms: number): string => new Date(ms).toISOString()
  const paid = status === 'subscriber' || status === 'subscriber_expired'
  const limit = paid ? 1024 * GIB : 2 * GIB
  const body: Record<string, unknown> = { status }
  if (status === 'trial') body['trial'] = { start: iso(now - 7 * DAY_MS), end: iso(now + 23 * DAY_MS) }
  if (status === 'trial_expired' || paid) body['trial'] = { start: iso(now - 400 * DAY_MS), end: iso(now - 370 * DAY_MS) }
  if (paid) {
    body['current_subs'] = {
      product_id: 'lightroom_1tb',
      store: 'adobe',
      purchase_date: iso(now - 365 * DAY_MS),
      ...(status === 'subscriber_expired' ? { expiration_date: iso(now - DAY_MS) } : {})
    }
  }
  body['storage'] = { used: paid ? 52_613_349_376 : 0, limit, display_limit: limit, warn: Math.round(limit * 0.9) }
  return body
}

export function catalogBody (origin: string, imsUser: MockImsUser, user: MockLightroomUser): Record<string, unknown> {
  const id = hexId('catalog', imsUser.sub)
  const first = namesOf(imsUser, user).first
  return {
    base: `${origin}/v2/`,
    id,
    type: 'catalog',
    subtype: 'lightroom',
    created: CREATED,
    updated: UPDATED,
    payload: {
      name: first === '' ? 'Lightroom Catalog' : `${first}'s Catalog`,
      userCreated: CREATED,
      userUpdated: UPDATED,
      settings: {}
    },
    links: { self: { href: `v2/catalogs/${id}` } }
  }
}
