import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { expect, test } from 'tstyche'
import lrImsPlugin, {
  encryptedStore, memoryBackend, LightroomAuthError, LightroomClient,
  type AddToAlbumResult, type ReencryptReport, type RenewReport, type LightroomAlbum, type LightroomAsset, type LightroomImsOptions, type Rendition, type TokenStore
} from '../index.js'
import { createMockIms, testingHooks, type MockIms } from '../lib/testing/index.js'

test('the plugin registers with the documented options', async () => {
  const app = Fastify()
  const store = encryptedStore(memoryBackend(), { keys: [{ id: 'k1', key: 'base64-key' }] })
  expect(store).type.toBe<TokenStore>()
  await app.register(lrImsPlugin, {
    clientId: 'id',
    clientSecret: 'secret',
    redirectUri: 'https://app.example/auth/lightroom/callback',
    cookieSecret: ['a'.repeat(32), 'b'.repeat(32)],
    scopes: ['openid', 'AdobeID', 'lr_partner_apis', 'lr_partner_rendition_apis', 'offline_access'],
    store,
    routePrefix: '/auth/lightroom',
    refreshMarginSeconds: 300
  })
  expect<LightroomImsOptions>().type.not.toBeAssignableFrom({ clientId: 'id' })
  expect<LightroomImsOptions>().type.not.toBeAssignableFrom({ clientId: 'id', clientSecret: 's', redirectUri: 'r', refreshMarginSeconds: '300' })
})

test('request.lightroomToken() is typed by declaration merging', () => {
  const app = Fastify()
  app.get('/photos', async (request) => {
    expect(request.lightroomToken()).type.toBe<Promise<string>>()
    expect(request.lightroomToken({ force: true })).type.toBe<Promise<string>>()
    expect(request.lightroomUserId()).type.toBe<Promise<string | undefined>>()
    expect(request.lightroomToken).type.not.toBeCallableWith('not-options')
    return null
  })
})

test('app.lightroom holds what works without a request', () => {
  const app = Fastify()
  expect(app.lightroom.tokenFor('user@AdobeID')).type.toBe<Promise<string>>()
  expect(app.lightroom.requireLogin).type.toBe<(request: FastifyRequest, reply: FastifyReply) => Promise<void>>()
  expect(app.lightroom.loginUrl('/back')).type.toBe<string>()
  expect(app.lightroom.renewExpiring({ olderThanSeconds: 86400 })).type.toBe<Promise<RenewReport>>()
  expect(app.lightroom.renewExpiring()).type.toBe<Promise<RenewReport>>()
  expect(app.lightroom.renewExpiring).type.toBeCallableWith({ concurrency: 8, maxPerSecond: 50, signal: AbortSignal.timeout(1000), onProgress: (report: RenewReport) => { report.renewed.toFixed() } })
  expect(app.lightroom.renewExpiring).type.not.toBeCallableWith({ concurrency: '8' })
  expect(app.lightroom.reencryptAll({ concurrency: 2 })).type.toBe<Promise<ReencryptReport>>()
  expect(app.lightroom.reencryptAll).type.not.toBeCallableWith({ maxPerSecond: 5 })
  app.get('/admin', { preHandler: app.lightroom.requireLogin }, async () => 'ok')
})

test('LightroomAuthError carries a stable code and status', () => {
  const error = new LightroomAuthError('LR_LOGIN_REQUIRED', 401, 'sign in')
  expect(error.code).type.toBe<'LR_LOGIN_REQUIRED' | 'LR_IMS_UNAVAILABLE' | 'LR_IMS_ERROR' | 'LR_STORE_UNAVAILABLE' | 'LR_STORE_CORRUPT' | 'LR_ACCESS_DENIED' | 'LR_IMS_LOGIN_REQUIRED' | 'LR_CONSENT_REQUIRED' | 'LR_INTERACTION_REQUIRED' | 'LR_INVALID_SCOPE' | 'LR_BAD_STATE' | 'LR_BAD_ORIGIN' | 'LR_INVALID_ID_TOKEN' | 'LR_BAD_REQUEST'>()
  expect(error.statusCode).type.toBe<number>()
  expect(error).type.toBeAssignableTo<Error>()
})

test('the testing entry point exposes the mock IMS', () => {
  expect(createMockIms()).type.toBe<Promise<MockIms>>()
  expect(createMockIms).type.not.toBeCallableWith({ flavor: 'keycloak' })
})

test('testing knobs travel under the testingHooks symbol, never as options', async () => {
  const app = Fastify()
  const required = { clientId: 'id', clientSecret: 'secret', redirectUri: 'https://app.example/auth/lightroom/callback' }
  await app.register(lrImsPlugin, { ...required, [testingHooks]: { now: () => 0, imsRetry: { retries: 0 }, refreshLock: { lockTtlMs: 100 } } })
  expect<LightroomImsOptions>().type.not.toBeAssignableFrom({ ...required, now: () => 0 })
  expect<LightroomImsOptions>().type.not.toBeAssignableFrom({ ...required, [testingHooks]: { now: 'not a clock' } })
})

test('the Lightroom API client: paged iterators, streamed renditions, uploads', () => {
  const app = Fastify()
  app.get('/photos', async (request) => {
    const lr = request.lightroomApi()
    expect(lr.albums({ subtype: 'project' })).type.toBe<AsyncGenerator<LightroomAlbum>>()
    expect(lr.assets({ subtype: ['image'] })).type.toBe<AsyncGenerator<LightroomAsset>>()
    expect(lr.asset('0123456789abcdef0123456789abcdef')).type.toBe<Promise<LightroomAsset | null>>()
    expect(lr.rendition('0123456789abcdef0123456789abcdef', '2048')).type.toBe<Promise<Rendition | null>>()
    expect(lr.rendition).type.not.toBeCallableWith('0123456789abcdef0123456789abcdef', '999')
    expect(lr.generateRenditions).type.not.toBeCallableWith('0123456789abcdef0123456789abcdef', ['640'])
    expect(lr.uploadAsset).type.toBeCallableWith({ body: Buffer.alloc(1), size: 1, fileName: 'a.jpg', contentType: 'image/jpeg' })
    expect(lr.addToAlbum('0123456789abcdef0123456789abcdef', [])).type.toBe<Promise<AddToAlbumResult>>()
    expect(app.lightroom.api('user')).type.toBe<LightroomClient>()
  })
})
