import { test } from 'tap'
import {
  DEFAULT_LIFETIME_MS,
  MAX_LIFETIME_MS,
  MAX_TRUSTED_TOKEN_AGE_MS,
  isAccessTokenExpired,
  isAccessTokenFresh,
  isRefreshTokenExpired,
  isTokenSet,
  parseTokenResponse,
  refreshTokenAge,
  responseLifetimeMs
} from '../lib/auth/token-set.js'
import type { TokenSet } from '../lib/auth/token-set.js'

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0)
const SECOND = 1_000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** An unsigned JWT-shaped string, as IMS tokens look to a reader that does not verify. */
function fakeJwt (payload: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'RS256', x5u: 'ims_na1-key-at-1.cer' })}.${part(payload)}.c2lnbmF0dXJl`
}

function previousSet (overrides: Partial<TokenSet> = {}): TokenSet {
  return {
    userId: 'user-1@AdobeID',
    accessToken: 'old-access',
    refreshToken: 'old-refresh',
    tokenType: 'bearer',
    accessExpiresAt: NOW - MINUTE,
    refreshIssuedAt: NOW - 3 * DAY,
    refreshExpiresAt: NOW + 11 * DAY,
    receivedAt: NOW - DAY,
    ...overrides
  }
}

test('expires_in in seconds (IMS v3): 86399 is 24 hours', async (t) => {
  const set = parseTokenResponse({ access_token: 'opaque', token_type: 'bearer', expires_in: 86399 }, { now: NOW, userId: 'u' })
  t.equal(set.accessExpiresAt, NOW + 86399 * SECOND)
  t.equal(set.receivedAt, NOW)
  t.equal(set.userId, 'u')
  t.equal(set.tokenType, 'bearer')
})

test('expires_in in milliseconds (legacy v1): 86399985 is 24 hours, not 1000 days', async (t) => {
  const set = parseTokenResponse({ access_token: 'opaque', token_type: 'bearer', expires_in: 86399985 }, { now: NOW, userId: 'u' })
  t.equal(set.accessExpiresAt, NOW + 86399985)
})

test('a small expires_in stays seconds: 30 is 30 seconds, never 30 ms', async (t) => {
  const set = parseTokenResponse({ access_token: 'opaque', expires_in: 30 }, { now: NOW, userId: 'u' })
  t.equal(set.accessExpiresAt, NOW + 30 * SECOND)
})

test('expires_in may be a numeric string', async (t) => {
  const set = parseTokenResponse({ access_token: 'opaque', expires_in: ' 3600 ' }, { now: NOW, userId: 'u' })
  t.equal(set.accessExpiresAt, NOW + HOUR)
})

test('the seconds/milliseconds boundary sits at 30 days', async (t) => {
  t.equal(responseLifetimeMs(MAX_LIFETIME_MS / SECOND), MAX_LIFETIME_MS, '30 days in seconds is still seconds')
  t.equal(responseLifetimeMs(MAX_LIFETIME_MS / SECOND + 1), MAX_LIFETIME_MS / SECOND + 1, 'one more second can only be ms')
  t.equal(responseLifetimeMs(1), SECOND, 'one second is the shortest lifetime believed')
  t.equal(responseLifetimeMs(0.5 * DAY / SECOND + 0.4), 0.5 * DAY + 400, 'fractions of seconds are kept')
})

test('expires_in that is absurd in both units is refused', async (t) => {
  t.throws(() => responseLifetimeMs(0), /expires_in 0 is outside/)
  t.throws(() => responseLifetimeMs(-5), /outside/)
  t.throws(() => responseLifetimeMs(MAX_LIFETIME_MS + 1), /outside/, 'more than 30 days even as ms')
  t.throws(() => parseTokenResponse({ access_token: 'opaque', expires_in: 0 }, { now: NOW, userId: 'u' }), /outside/)
})

test('expires_in that is not a number is refused, without echoing it', async (t) => {
  for (const bad of ['soon', '12abc', true, {}, [3600]]) {
    t.throws(() => parseTokenResponse({ access_token: 'opaque', expires_in: bad }, { now: NOW, userId: 'u' }),
      { message: 'Token response field expires_in is not a number' })
  }
})

test('no expires_in and no claims: a conservative 5 minutes', async (t) => {
  const set = parseTokenResponse({ access_token: 'opaque', expires_in: null }, { now: NOW, userId: 'u' })
  t.equal(DEFAULT_LIFETIME_MS, 5 * MINUTE)
  t.equal(set.accessExpiresAt, NOW + DEFAULT_LIFETIME_MS)
})

test('JWT access token: its created_at/expires_in (ms strings) decide the expiry', async (t) => {
  const accessToken = fakeJwt({ type: 'access_token', created_at: String(NOW - 2 * SECOND), expires_in: '86400000' })
  const set = parseTokenResponse({ access_token: accessToken, expires_in: 86399 }, { now: NOW, userId: 'u' })
  t.equal(set.accessExpiresAt, NOW - 2 * SECOND + DAY, 'agrees with the response, counting the 2 s already elapsed')
})

test('JWT claims override the response expires_in, and may be numbers', async (t) => {
  const accessToken = fakeJwt({ created_at: NOW, expires_in: 2 * HOUR })
  const set = parseTokenResponse({ access_token: accessToken, expires_in: 86399 }, { now: NOW, userId: 'u' })
  t.equal(set.accessExpiresAt, NOW + 2 * HOUR)
})

test('JWT created_at is anchored to our clock: skew cannot make a fresh token look dead', async (t) => {
  const future = fakeJwt({ created_at: String(NOW + HOUR), expires_in: String(DAY) })
  t.equal(parseTokenResponse({ access_token: future }, { now: NOW, userId: 'u' }).accessExpiresAt, NOW + DAY,
    'issuer clock ahead: the full lifetime from now')

  const behind = fakeJwt({ created_at: String(NOW - 3 * DAY), expires_in: String(DAY) })
  t.equal(parseTokenResponse({ access_token: behind }, { now: NOW, userId: 'u' }).accessExpiresAt, NOW + DAY - MAX_TRUSTED_TOKEN_AGE_MS,
    'issuer clock far behind: at most the trusted age is taken off')

  const noCreatedAt = fakeJwt({ expires_in: String(HOUR) })
  t.equal(parseTokenResponse({ access_token: noCreatedAt }, { now: NOW, userId: 'u' }).accessExpiresAt, NOW + HOUR,
    'no created_at: the lifetime from now')
})

test('JWT claims with absurd values are ignored in favour of the response', async (t) => {
  const absurd = [
    { created_at: String(NOW), expires_in: '5' },
    { created_at: String(NOW), expires_in: String(400 * DAY) },
    { created_at: String(NOW), expires_in: 'a day' },
    { created_at: String(NOW), expires_in: '12345678901234567890' },
    { created_at: String(NOW), expires_in: -DAY },
    { created_at: String(NOW) }
  ]
  for (const claims of absurd) {
    const set = parseTokenResponse({ access_token: fakeJwt(claims), expires_in: 3600 }, { now: NOW, userId: 'u' })
    t.equal(set.accessExpiresAt, NOW + HOUR, JSON.stringify(claims))
  }
})

test('an access token that only looks like a JWT is treated as opaque', async (t) => {
  const set = parseTokenResponse({ access_token: 'not.a.jwt', expires_in: 3600 }, { now: NOW, userId: 'u' })
  t.equal(set.accessExpiresAt, NOW + HOUR)
})

test('sign-in: a new refresh token gets its JWT created_at and expiry', async (t) => {
  const refreshToken = fakeJwt({ type: 'refresh_token', created_at: String(NOW - SECOND), expires_in: String(14 * DAY) })
  const set = parseTokenResponse({ access_token: 'a', refresh_token: refreshToken, expires_in: 86399, scope: 'openid,AdobeID' }, { now: NOW, userId: 'u' })
  t.equal(set.refreshToken, refreshToken)
  t.equal(set.refreshIssuedAt, NOW - SECOND)
  t.equal(set.refreshExpiresAt, NOW - SECOND + 14 * DAY)
  t.equal(set.scope, 'openid,AdobeID')
})

test('a new refresh token with no believable created_at is dated now, expiry unknown', async (t) => {
  const cases = [
    'opaque-refresh',
    fakeJwt({ created_at: String(NOW + DAY), expires_in: String(14 * DAY) }),
    fakeJwt({ created_at: '0', expires_in: String(14 * DAY) }),
    fakeJwt({ expires_in: String(14 * DAY) })
  ]
  for (const refreshToken of cases) {
    const set = parseTokenResponse({ access_token: 'a', refresh_token: refreshToken, expires_in: 60 }, { now: NOW, userId: 'u' })
    t.equal(set.refreshIssuedAt, NOW)
    t.equal(set.refreshExpiresAt, undefined)
  }
})

test('a refresh token created slightly in our future (skew) is dated now; absurd lifetimes are not believed', async (t) => {
  const ahead = fakeJwt({ created_at: String(NOW + MINUTE), expires_in: '1' })
  const set = parseTokenResponse({ access_token: 'a', refresh_token: ahead, expires_in: 60 }, { now: NOW, userId: 'u' })
  t.equal(set.refreshIssuedAt, NOW)
  t.equal(set.refreshExpiresAt, undefined)
})

test('refresh response without refresh_token keeps the old one, its age and expiry', async (t) => {
  const previous = previousSet()
  const set = parseTokenResponse({ access_token: 'new-access', token_type: 'bearer', expires_in: 86399 }, { now: NOW, previous })
  t.equal(set.accessToken, 'new-access')
  t.equal(set.refreshToken, 'old-refresh')
  t.equal(set.refreshIssuedAt, previous.refreshIssuedAt)
  t.equal(set.refreshExpiresAt, previous.refreshExpiresAt)
  t.equal(set.userId, previous.userId, 'no id_token on refresh: the user id carries over')
})

test('refresh response echoing the same refresh token keeps its age', async (t) => {
  const previous = previousSet({ refreshExpiresAt: undefined, scope: 'openid' })
  const set = parseTokenResponse({ access_token: 'new-access', refresh_token: 'old-refresh', expires_in: 86399 }, { now: NOW, previous, userId: previous.userId })
  t.equal(set.refreshIssuedAt, previous.refreshIssuedAt)
  t.notOk('refreshExpiresAt' in set)
  t.equal(set.scope, 'openid', 'no scope in the response: the scope is unchanged')
})

test('refresh response with a new refresh token replaces the grant (rotation)', async (t) => {
  const previous = previousSet()
  const set = parseTokenResponse({ access_token: 'new-access', refresh_token: 'new-refresh', expires_in: 86399 }, { now: NOW, previous })
  t.equal(set.refreshToken, 'new-refresh')
  t.equal(set.refreshIssuedAt, NOW)
  t.equal(set.refreshExpiresAt, undefined, 'the old expiry belongs to the old grant')
})

test('a previous set without refresh token and a response without one: none', async (t) => {
  const previous = previousSet({ refreshToken: undefined, refreshIssuedAt: undefined, refreshExpiresAt: undefined })
  const set = parseTokenResponse({ access_token: 'a', expires_in: 60 }, { now: NOW, previous })
  t.notOk('refreshToken' in set)
  t.notOk('refreshIssuedAt' in set)
})

test('a kept refresh token without known age stays without one', async (t) => {
  const previous = previousSet({ refreshIssuedAt: undefined, refreshExpiresAt: undefined })
  const set = parseTokenResponse({ access_token: 'a', expires_in: 60 }, { now: NOW, previous })
  t.equal(set.refreshToken, 'old-refresh')
  t.notOk('refreshIssuedAt' in set)
})

test('unusable responses throw plain Errors that never contain a token', async (t) => {
  const secretRefresh = 'rt-SECRET-do-not-log'
  const secretAccess = 'at-SECRET-do-not-log'
  const cases: Array<[unknown, RegExp]> = [
    [null, /not a JSON object/],
    ['access_token=x', /not a JSON object/],
    [[{ access_token: secretAccess }], /not a JSON object/],
    [{ refresh_token: secretRefresh, expires_in: 60 }, /no access_token/],
    [{ access_token: '', refresh_token: secretRefresh }, /no access_token/],
    [{ access_token: 42 }, /no access_token/],
    [{ access_token: secretAccess, token_type: 'DPoP' }, /unsupported token_type/],
    [{ access_token: secretAccess, token_type: 7 }, /token_type is not a string/],
    [{ access_token: secretAccess, refresh_token: 99 }, /refresh_token is not a string/],
    [{ access_token: secretAccess, refresh_token: '' }, /empty refresh_token/],
    [{ access_token: secretAccess, scope: ['openid'] }, /scope is not a string/]
  ]
  for (const [body, expected] of cases) {
    const err = t.throws(() => parseTokenResponse(body, { now: NOW, userId: 'u' }), expected) as Error
    t.equal(err.constructor, Error)
    t.notMatch(err.message, /SECRET/)
  }
})

test('the user id comes from ctx, else the previous set, else the response is refused', async (t) => {
  t.throws(() => parseTokenResponse({ access_token: 'at-SECRET', expires_in: 60 }, { now: NOW }), { message: 'Token response cannot be tied to a user: no user id known' })
  t.throws(() => parseTokenResponse({ access_token: 'a', expires_in: 60 }, { now: NOW, userId: '' }), /no user id/)
  t.throws(() => parseTokenResponse({ access_token: 'a', expires_in: 60 }, { now: NOW, userId: 'someone-else', previous: previousSet() }), /another user/)
  t.equal(parseTokenResponse({ access_token: 'a', token_type: 'Bearer' }, { now: NOW, userId: 'user-1@AdobeID', previous: previousSet() }).userId, 'user-1@AdobeID')
})

test('freshness: strictly more than the margin left', async (t) => {
  const set = previousSet({ accessExpiresAt: NOW + 5 * MINUTE })
  t.ok(isAccessTokenFresh(set, NOW - 1, 5 * MINUTE), 'a millisecond more than the margin')
  t.notOk(isAccessTokenFresh(set, NOW, 5 * MINUTE), 'exactly the margin left: refresh')
  t.notOk(isAccessTokenExpired(set, NOW + 5 * MINUTE - 1), 'the last millisecond still works')
  t.ok(isAccessTokenExpired(set, NOW + 5 * MINUTE), 'at the expiry instant it is gone')
})

test('refresh token age and expiry', async (t) => {
  const set = previousSet()
  t.equal(refreshTokenAge(set, NOW), 3 * DAY)
  t.equal(refreshTokenAge(previousSet({ refreshIssuedAt: undefined }), NOW), undefined)
  t.notOk(isRefreshTokenExpired(set, NOW))
  t.ok(isRefreshTokenExpired(set, NOW + 11 * DAY))
  t.notOk(isRefreshTokenExpired(previousSet({ refreshExpiresAt: undefined }), NOW + 100 * DAY), 'unknown is not expired')
})

test('isTokenSet accepts what parseTokenResponse makes, through JSON', async (t) => {
  const refreshToken = fakeJwt({ created_at: String(NOW), expires_in: String(14 * DAY) })
  const set = parseTokenResponse({ access_token: 'a', refresh_token: refreshToken, expires_in: 86399, scope: 'openid' }, { now: NOW, userId: 'u' })
  t.ok(isTokenSet(JSON.parse(JSON.stringify(set))))
  t.ok(isTokenSet(JSON.parse(JSON.stringify(previousSet({ refreshToken: undefined, refreshIssuedAt: undefined, refreshExpiresAt: undefined })))))
})

test('isTokenSet rejects old, corrupt or foreign records', async (t) => {
  const good = previousSet({ scope: 'openid' })
  const bad: unknown[] = [
    null,
    undefined,
    'a string',
    [good],
    { ...good, userId: undefined },
    { ...good, userId: '' },
    { ...good, accessToken: 7 },
    { ...good, tokenType: undefined },
    { ...good, accessExpiresAt: '2025-01-01' },
    { ...good, accessExpiresAt: Number.NaN },
    { ...good, receivedAt: undefined },
    { ...good, refreshToken: null },
    { ...good, refreshToken: '' },
    { ...good, scope: 5 },
    { ...good, refreshIssuedAt: null },
    { ...good, refreshExpiresAt: 'soon' },
    // An older record shape: seconds-based expiry under another name.
    { access_token: 'a', refresh_token: 'r', expires_at: 1736942400 }
  ]
  bad.forEach((value, i) => t.notOk(isTokenSet(value), `bad record #${i}`))
  t.ok(isTokenSet(good))
})
