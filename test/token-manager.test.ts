import { test } from 'tap'
import { memoryBackend, type StoreBackend } from '../index.js'
import { ImsClient } from '../lib/ims/client.js'
import { TokenManager, tokenKey } from '../lib/auth/token-manager.js'
import { isTokenSet, parseTokenResponse, type TokenSet } from '../lib/auth/token-set.js'
import { fakeClock, type FakeClock } from './helpers/clock.js'
import { KEY_A, KEY_B, harness, signIn, type Harness } from './helpers/setup.js'
import { createMockIms } from '../lib/testing/index.js'
import { encryptedStore } from '../index.js'

const DAY = 86_400_000
/** The token manager's default failureCooldownMs. */
const COOLDOWN_MS = 5_000

/** What request.lightroomToken() and app.lightroom.tokenFor() hand out: the access token of a usable set. */
async function accessTokenOf (manager: TokenManager, userId: string, options?: { force?: boolean, rejectedAccessToken?: string }): Promise<string> {
  return (await manager.usable(userId, options)).accessToken
}

interface World extends Harness { sub: string, clock: FakeClock, manager: (extra?: Partial<ConstructorParameters<typeof TokenManager>[0]>) => TokenManager }

/** One signed-in user, and a way to build further token managers over the same store: "other processes". */
async function world (backend?: StoreBackend): Promise<World> {
  const clock = fakeClock()
  const h = await harness({ ims: { now: clock.now }, plugin: { now: clock.now }, ...(backend ? { backend } : {}) })
  await signIn(h.browser())
  const client = h.ims.clients[0]!
  const ims = new ImsClient({ tokenEndpoint: `${h.ims.origin}/ims/token/v3`, clientId: client.clientId, clientSecret: client.clientSecret, retryBaseDelayMs: 1, maxRetryDelayMs: 5 })
  return {
    ...h,
    sub: h.ims.users[0]!.sub,
    clock,
    manager: (extra = {}) => new TokenManager({ store: h.store, ims, log: h.app.log, now: clock.now, refreshMarginMs: 300_000, renewRefreshAfterMs: 7 * DAY, sessionMaxAgeMs: 30 * DAY, lockTtlMs: 300, waitForPeerMs: 300, pollIntervalMs: 10, ...extra })
  }
}

test('a caller that loses the lock race waits for the peer and uses its result without calling IMS', async (t) => {
  const w = await world()
  t.teardown(w.close)
  w.clock.advance(DAY)
  const peerLock = await w.store.tryLock(`refresh:${w.sub}`, 5_000)
  t.ok(peerLock)
  const waiting = accessTokenOf(w.manager({ waitForPeerMs: 5_000 }), w.sub)
  // The "peer" refreshes by hand and publishes the result, then releases its lock.
  const stored = await w.store.get<TokenSet>(tokenKey(w.sub))
  const client = w.ims.clients[0]!
  const body = await new ImsClient({ tokenEndpoint: `${w.ims.origin}/ims/token/v3`, clientId: client.clientId, clientSecret: client.clientSecret }).refresh(stored!.value.refreshToken!)
  const fresh = parseTokenResponse(body, { now: w.clock.now(), previous: stored!.value })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(await w.store.compareAndSet(tokenKey(w.sub), stored!.revision, fresh, DAY))
  await peerLock!.release()
  t.equal(await waiting, fresh.accessToken)
  t.equal(w.ims.count('token:refresh_token'), 1, 'only the peer called IMS')
})

test('a peer that died holding the lock delays others by at most the lock TTL', async (t) => {
  const w = await world()
  t.teardown(w.close)
  w.clock.advance(DAY)
  await w.store.tryLock(`refresh:${w.sub}`, 200)
  const started = Date.now()
  const token = await accessTokenOf(w.manager(), w.sub)
  t.ok(Date.now() - started >= 150, 'waited for the dead lock to expire')
  t.equal(w.ims.introspect(token).active, true)
  t.equal(w.ims.count('token:refresh_token'), 1)
})

test('a newer record landing during a refresh wins over ours (compare-and-set)', async (t) => {
  const inner = memoryBackend()
  const racing = Object.create(inner) as StoreBackend
  let landing: string | undefined
  racing.compareAndSet = async (key, expected, value, ttl) => {
    if (landing !== undefined && key.startsWith('tokens:')) { await inner.set(key, landing); landing = undefined }
    return await inner.compareAndSet(key, expected, value, ttl)
  }
  const w = await world(racing)
  t.teardown(w.close)
  // A second sign-in's record, to be written just before our refresh's compare-and-set. Envelopes
  // are bound to their record key, so it is encrypted under the user's key and then put back.
  const before = await w.store.get<TokenSet>(tokenKey(w.sub))
  const newer = { ...before!.value, accessToken: 'from-a-new-sign-in', accessExpiresAt: w.clock.now() + 2 * DAY }
  await w.store.set(tokenKey(w.sub), newer)
  landing = (await inner.get(tokenKey(w.sub)))!
  await inner.set(tokenKey(w.sub), before!.revision)
  w.clock.advance(DAY)
  const token = await accessTokenOf(w.manager(), w.sub)
  t.equal(token, 'from-a-new-sign-in', 'the newer set is returned, ours is dropped')
  t.equal((await w.store.get<TokenSet>(tokenKey(w.sub)))!.value.accessToken, 'from-a-new-sign-in')
})

test('store failures become 503 LR_STORE_UNAVAILABLE and delete nothing', async (t) => {
  const inner = memoryBackend()
  const flaky = Object.create(inner) as StoreBackend
  let down = false
  flaky.get = async (key) => { if (down) throw new Error('ECONNREFUSED'); return await inner.get(key) }
  const w = await world(flaky)
  t.teardown(w.close)
  down = true
  await t.rejects(accessTokenOf(w.manager(), w.sub), { code: 'LR_STORE_UNAVAILABLE', statusCode: 503 })
  down = false
  t.ok(await accessTokenOf(w.manager(), w.sub), 'works again when the store is back')
})

test('a decryptable record of the wrong shape is logged and treated as signed out', async (t) => {
  const w = await world()
  t.teardown(w.close)
  await w.store.set(tokenKey(w.sub), { some: 'thing else' })
  await t.rejects(accessTokenOf(w.manager(), w.sub), { code: 'LR_LOGIN_REQUIRED' })
  t.ok(w.logs.some((line) => line.includes('unexpected shape')))
  t.equal(await w.store.get(tokenKey(w.sub)), undefined, 'and removed')
})

test('without a refresh token the access token is used until it expires, then sign-in is required', async (t) => {
  const w = await world()
  t.teardown(w.close)
  const stored = await w.store.get<TokenSet>(tokenKey(w.sub))
  const { refreshToken, ...withoutRefresh } = stored!.value
  t.ok(refreshToken)
  await w.store.set(tokenKey(w.sub), withoutRefresh)
  w.clock.advance(DAY - 60_000)
  t.equal(await accessTokenOf(w.manager(), w.sub), withoutRefresh.accessToken, 'inside the margin but valid: used')
  w.clock.advance(120_000)
  await t.rejects(accessTokenOf(w.manager(), w.sub), { code: 'LR_LOGIN_REQUIRED' })
  t.equal(w.ims.count('token:refresh_token'), 0)
})

test('a forced refresh only happens while the rejected token is still the stored one', async (t) => {
  const w = await world()
  t.teardown(w.close)
  const manager = w.manager()
  const first = await accessTokenOf(manager, w.sub)
  const second = await accessTokenOf(manager, w.sub, { force: true, rejectedAccessToken: first })
  t.not(second, first)
  const third = await accessTokenOf(manager, w.sub, { force: true, rejectedAccessToken: first })
  t.equal(third, second, 'a stale rejection does not refresh again')
  t.equal(w.ims.count('token:refresh_token'), 1)
})

test('IMS errors that are not about the grant never delete anything', async (t) => {
  const w = await world()
  t.teardown(w.close)
  const original = await accessTokenOf(w.manager(), w.sub)
  w.clock.advance(DAY - 60_000)
  w.ims.fail('token', { oauthError: 'invalid_client', status: 401 })
  t.equal(await accessTokenOf(w.manager(), w.sub), original, 'still-valid token served')
  t.equal(w.ims.count('token:refresh_token'), 1)
  // Each failure holds every instance back for the failure cooldown (5 s): past it, IMS is asked again.
  w.clock.advance(COOLDOWN_MS)
  w.ims.fail('token', { status: 200, body: '{"unexpected":true}' })
  t.equal(await accessTokenOf(w.manager(), w.sub), original, 'an unusable 200 is not trusted, the still-valid token served')
  t.equal(w.ims.count('token:refresh_token'), 2)
  w.clock.advance(120_000)
  w.ims.fail('token', { oauthError: 'invalid_client', status: 401 })
  await t.rejects(accessTokenOf(w.manager(), w.sub), { code: 'LR_IMS_UNAVAILABLE', statusCode: 503 })
  t.equal(w.ims.count('token:refresh_token'), 3)
  t.ok(await w.backend.get(tokenKey(w.sub)), 'record kept')
  await t.rejects(accessTokenOf(w.manager(), w.sub), { code: 'LR_IMS_UNAVAILABLE' }, 'within the cooldown, another instance does not ask IMS')
  t.equal(w.ims.count('token:refresh_token'), 3)
  w.clock.advance(COOLDOWN_MS)
  t.ok(await accessTokenOf(w.manager(), w.sub), 'and it refreshes once IMS is fine')
})

test('refreshed tokens the store cannot take are kept in memory and written once it is back (no lost grant)', async (t) => {
  const inner = memoryBackend()
  const flaky = Object.create(inner) as StoreBackend
  let writesDown = false
  flaky.compareAndSet = async (...args) => { if (writesDown) throw new Error('READONLY'); return await inner.compareAndSet(...args) }
  const w = await world(flaky)
  t.teardown(w.close)
  const client = w.ims.clients[0]!
  const real = new ImsClient({ tokenEndpoint: `${w.ims.origin}/ims/token/v3`, clientId: client.clientId, clientSecret: client.clientSecret })
  // The store stops taking writes while IMS is answering: after the refresh token is spent.
  const ims = { refresh: async (token: string) => { writesDown = true; return await real.refresh(token) }, revoke: async () => {} }
  const manager = w.manager({ ims })
  const before = await w.store.get<TokenSet>(tokenKey(w.sub))
  w.clock.advance(DAY)
  const fresh = await accessTokenOf(manager, w.sub)
  t.not(fresh, before!.value.accessToken, 'the refreshed token is handed out although it could not be stored')
  t.equal((await w.store.get<TokenSet>(tokenKey(w.sub)))!.value.accessToken, before!.value.accessToken, 'the store still holds the old set')
  t.ok(w.logs.some((line) => line.includes('keeping them in memory')))
  t.equal(await accessTokenOf(manager, w.sub), fresh, 'still down: the pending set is handed out, the only one that works')
  writesDown = false
  t.equal(await accessTokenOf(manager, w.sub), fresh, 'once the store is back the pending set is written and used')
  t.equal((await w.store.get<TokenSet>(tokenKey(w.sub)))!.value.accessToken, fresh)
  w.clock.advance(DAY)
  t.ok(await accessTokenOf(manager, w.sub), 'the next refresh uses the rotated refresh token')
  t.equal(w.ims.count('token:refresh_token'), 2)
  t.equal(w.ims.count('token:refresh_token:error'), 0, 'the rotated-away refresh token was never replayed')
})

test('sign-in and sign-out while the store is down answer 503, not 500', async (t) => {
  const inner = memoryBackend()
  const flaky = Object.create(inner) as StoreBackend
  let down = false
  for (const method of ['get', 'set', 'delete', 'compareAndSet'] as const) {
    const original = inner[method].bind(inner) as (...args: unknown[]) => Promise<unknown>
    ;(flaky as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => { if (down) throw new Error('ECONNREFUSED'); return await original(...args) }
  }
  const w = await world(flaky)
  t.teardown(w.close)
  const signedIn = w.browser()
  await signIn(signedIn)
  const browser = w.browser()
  const atIms = await browser.follow('/auth/lightroom/login', { stopAt: (l) => l.pathname === '/auth/lightroom/callback' })
  down = true
  const callback = await browser.get(atIms.location!)
  t.equal(callback.status, 503)
  t.match(callback.body, /LR_STORE_UNAVAILABLE/)
  const logout = await w.app.inject({ method: 'POST', url: '/auth/lightroom/logout', headers: { accept: 'application/json', cookie: signedIn.cookieHeader() } })
  t.equal(logout.statusCode, 503)
  t.equal(logout.json().code, 'LR_STORE_UNAVAILABLE')
  down = false
  const retry = await w.app.inject({ method: 'POST', url: '/auth/lightroom/logout', headers: { cookie: signedIn.cookieHeader() } })
  t.equal(retry.statusCode, 303, 'sign-out works once the store is back')
})

test('a refresh racing reencryptAll keeps the new grant: the same grant re-encoded is not a newer one', async (t) => {
  const clock = fakeClock()
  const ims = await createMockIms({ now: clock.now })
  t.teardown(() => ims.close())
  const backend = memoryBackend()
  // An instance not yet rotated: it writes under key A, and already reads key B.
  const first = await harness({ sharedIms: ims, backend, plugin: { now: clock.now, store: encryptedStore(backend, { keys: [KEY_A, KEY_B] }) } })
  t.teardown(first.close)
  const browser = first.browser()
  await signIn(browser)
  const rotated = await harness({ sharedIms: ims, backend, plugin: { now: clock.now, store: encryptedStore(backend, { keys: [KEY_B, KEY_A] }) } })
  t.teardown(rotated.close)
  clock.advance(DAY)
  ims.fail('token', { delayMs: 300 })
  // The refresh runs on the instance with the old key, so the record it marks is one reencryptAll rewrites.
  const pending = first.app.inject({ url: '/token', headers: { cookie: browser.cookieHeader() } })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(await rotated.app.lightroom.reencryptAll(), { scanned: 2, reencrypted: 2, failed: 0, completed: true, aborted: false })
  const during = await pending
  t.equal(during.statusCode, 200)
  t.equal(ims.introspect(during.json().token).active, true, 'the token handed out is the new, live one')
  clock.advance(10 * 60_000)
  const after = await rotated.app.inject({ url: '/token', headers: { cookie: browser.cookieHeader() } })
  t.equal(after.statusCode, 200, 'still signed in: the rotated grant was stored, not thrown away')
  t.equal(ims.count('token:refresh_token:error'), 0)
})

test('an instance without the newest key leaves records under it alone (rolling key rotation)', async (t) => {
  const clock = fakeClock()
  const ims = await createMockIms({ now: clock.now })
  t.teardown(() => ims.close())
  const backend = memoryBackend()
  const older = await harness({ sharedIms: ims, backend, plugin: { now: clock.now } })
  t.teardown(older.close)
  const newer = await harness({ sharedIms: ims, backend, plugin: { now: clock.now, store: encryptedStore(backend, { keys: [KEY_B, KEY_A] }) } })
  t.teardown(newer.close)
  const browser = older.browser()
  await signIn(browser)
  clock.advance(DAY)
  t.equal((await newer.app.inject({ url: '/token', headers: { cookie: browser.cookieHeader() } })).statusCode, 200, 'the new instance refreshed and wrote under key B')
  t.equal((await older.app.inject({ url: '/token', headers: { cookie: browser.cookieHeader() } })).statusCode, 401, 'the old instance cannot read it')
  t.equal((await newer.app.inject({ url: '/token', headers: { cookie: browser.cookieHeader() } })).statusCode, 200, 'and did not delete it: the new instance still serves the user')
})

test('an invalid_grant met after the refresh lock was lost deletes nothing (a peer may hold the new grant)', async (t) => {
  const inner = memoryBackend()
  const lossy = Object.create(inner) as StoreBackend
  lossy.tryLock = async (name, ttl) => {
    const lock = await inner.tryLock(name, ttl)
    return lock === undefined ? undefined : { owner: lock.owner, extend: async () => false, release: async () => { await lock.release() } }
  }
  const w = await world(lossy)
  t.teardown(w.close)
  const client = w.ims.clients[0]!
  const real = new ImsClient({ tokenEndpoint: `${w.ims.origin}/ims/token/v3`, clientId: client.clientId, clientSecret: client.clientSecret })
  // A slow IMS: the lock's renewal (every 100 ms here) fails before the answer arrives.
  const slow = { refresh: async (token: string) => { await new Promise((resolve) => setTimeout(resolve, 250)); return await real.refresh(token) }, revoke: async () => {} }
  w.clock.advance(DAY)
  w.ims.revokeConsent(w.sub)
  await t.rejects(accessTokenOf(w.manager({ ims: slow }), w.sub), { code: 'LR_IMS_UNAVAILABLE' })
  t.ok(isTokenSet((await w.store.get(tokenKey(w.sub)))?.value), 'the token record is still there')
  t.ok(w.logs.some((line) => line.includes('refresh lock lost')))
  await t.rejects(accessTokenOf(w.manager(), w.sub), { code: 'LR_LOGIN_REQUIRED' }, 'with the lock held throughout, the same answer signs the user out')
})

test('a lock extension that answers after its refresh ended does not mark the next refresh as lock-lost', async (t) => {
  const w = await world()
  t.teardown(w.close)
  let locks = 0
  // The first lock's extension answers "lost", but only after that refresh is over.
  const store = {
    ...w.store,
    tryLock: async (name: string, ttlMs: number) => {
      const lock = await w.store.tryLock(name, ttlMs)
      if (lock === undefined || ++locks > 1) return lock
      return { ...lock, extend: async () => { await new Promise((resolve) => setTimeout(resolve, 150)); return false } }
    }
  }
  // A first refresh slow enough for the lock's keep-alive (every 10 ms here) to ask for an extension.
  const client = w.ims.clients[0]!
  const real = new ImsClient({ tokenEndpoint: `${w.ims.origin}/ims/token/v3`, clientId: client.clientId, clientSecret: client.clientSecret })
  let refreshes = 0
  const ims = {
    refresh: async (token: string) => { if (++refreshes === 1) await new Promise((resolve) => setTimeout(resolve, 60)); return await real.refresh(token) },
    revoke: async () => {}
  }
  const manager = w.manager({ store, ims, lockTtlMs: 30 })
  w.clock.advance(DAY)
  await accessTokenOf(manager, w.sub)
  await new Promise((resolve) => setTimeout(resolve, 250))
  // The grant is then revoked: the next refresh's invalid_grant is certain, and must sign the user out.
  w.clock.advance(DAY)
  w.ims.revokeConsent(w.sub)
  await t.rejects(accessTokenOf(manager, w.sub), { code: 'LR_LOGIN_REQUIRED' }, 'signed out, not treated as a lost lock')
  t.notOk(w.logs.some((line) => line.includes('refresh lock lost')), 'no lock was reported lost')
})
