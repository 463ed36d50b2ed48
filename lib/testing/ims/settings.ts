/**
 * Options with their defaults filled in, validated up front so that a typo in a
 * test fails at creation with a message naming the option, not later as an
 * unexplained OAuth error.
 */
import type { MockImsClient, MockImsOptions, MockImsUser } from './types.js'

export interface MockImsSettings {
  host: string
  port: number
  clients: MockImsClient[]
  users: MockImsUser[]
  flavor: 'ims' | 'generic'
  consent: boolean
  accessTokenLifetimeSeconds: number
  refreshTokenLifetimeSeconds: number
  refreshTokenExpiry: 'sliding' | 'absolute'
  codeLifetimeSeconds: number
  rotateRefreshTokens: boolean
  expiresInUnit: 'seconds' | 'milliseconds'
  omitRefreshTokenOnRefresh: boolean
  omitIdTokenOnRefresh: boolean
  knownScopes: string[]
  requirePkce: boolean
  revokeOnCodeReplay: boolean
  idTokenIssuer: 'host' | 'host/ims'
  revocationScope: 'grant' | 'user-client'
  unknownCodeError: 'invalid_grant' | 'access_denied'
  now: () => number
}

export const DEFAULT_USER: MockImsUser = {
  sub: 'A1B2C3D4E5F6A7B8C9D0E1F2@AdobeID',
  name: 'Ada Lovelace',
  email: 'ada@example.com',
  givenName: 'Ada',
  familyName: 'Lovelace'
}

export const DEFAULT_SCOPES = [
  'openid', 'AdobeID', 'lr_partner_apis', 'lr_partner_rendition_apis', 'offline_access', 'email', 'profile'
]

const FOURTEEN_DAYS = 14 * 24 * 60 * 60

export function resolveSettings (options: MockImsOptions = {}): MockImsSettings {
  const clients = (options.clients ?? [{ clientId: 'test-client', clientSecret: 'test-secret' }])
    .map((client) => ({ ...client, ...(client.redirectUris ? { redirectUris: [...client.redirectUris] } : {}) }))
  const users = (options.users ?? [DEFAULT_USER]).map((user) => ({ ...user }))
  const settings: MockImsSettings = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    clients,
    users,
    flavor: options.flavor ?? 'ims',
    consent: options.consent ?? false,
    accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds ?? 86399,
    refreshTokenLifetimeSeconds: options.refreshTokenLifetimeSeconds ?? FOURTEEN_DAYS,
    refreshTokenExpiry: options.refreshTokenExpiry ?? 'sliding',
    codeLifetimeSeconds: options.codeLifetimeSeconds ?? 300,
    rotateRefreshTokens: options.rotateRefreshTokens ?? true,
    expiresInUnit: options.expiresInUnit ?? 'seconds',
    omitRefreshTokenOnRefresh: options.omitRefreshTokenOnRefresh ?? false,
    omitIdTokenOnRefresh: options.omitIdTokenOnRefresh ?? true,
    knownScopes: [...(options.knownScopes ?? DEFAULT_SCOPES)],
    requirePkce: options.requirePkce ?? false,
    revokeOnCodeReplay: options.revokeOnCodeReplay ?? false,
    idTokenIssuer: options.idTokenIssuer ?? 'host',
    revocationScope: options.revocationScope ?? 'grant',
    unknownCodeError: options.unknownCodeError ?? 'invalid_grant',
    now: options.now ?? Date.now
  }
  validate(settings)
  return settings
}

function validate (settings: MockImsSettings): void {
  if (settings.clients.length === 0) throw new TypeError('createMockIms: `clients` must not be empty')
  if (settings.users.length === 0) throw new TypeError('createMockIms: `users` must not be empty')
  const ids = new Set<string>()
  for (const client of settings.clients) {
    if (!client.clientId || !client.clientSecret) {
      throw new TypeError('createMockIms: every entry of `clients` needs a clientId and a clientSecret')
    }
    if (ids.has(client.clientId)) throw new TypeError(`createMockIms: duplicate clientId in \`clients\`: ${client.clientId}`)
    ids.add(client.clientId)
    for (const uri of client.redirectUris ?? []) {
      if (!isHttpUrl(uri)) throw new TypeError(`createMockIms: \`clients[].redirectUris\` must be absolute http(s) URLs, got ${uri}`)
    }
  }
  const subs = new Set<string>()
  for (const user of settings.users) {
    if (!user.sub) throw new TypeError('createMockIms: every entry of `users` needs a sub')
    if (subs.has(user.sub)) throw new TypeError(`createMockIms: duplicate sub in \`users\`: ${user.sub}`)
    subs.add(user.sub)
  }
  const choices: Array<[string, string, string[]]> = [
    ['idTokenIssuer', settings.idTokenIssuer, ['host', 'host/ims']],
    ['revocationScope', settings.revocationScope, ['grant', 'user-client']],
    ['unknownCodeError', settings.unknownCodeError, ['invalid_grant', 'access_denied']]
  ]
  for (const [name, value, allowed] of choices) {
    if (!allowed.includes(value)) throw new TypeError(`createMockIms: \`${name}\` must be one of ${allowed.map((choice) => `'${choice}'`).join(', ')}`)
  }
  for (const name of ['accessTokenLifetimeSeconds', 'refreshTokenLifetimeSeconds', 'codeLifetimeSeconds'] as const) {
    const value = settings[name]
    if (!Number.isFinite(value) || value <= 0) throw new TypeError(`createMockIms: \`${name}\` must be a positive number`)
  }
}

/** Absolute http(s) URL without a fragment (RFC 6749 §3.1.2 forbids fragments in redirect URIs). */
export function isHttpUrl (value: string): boolean {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  return (url.protocol === 'http:' || url.protocol === 'https:') && !value.includes('#')
}
