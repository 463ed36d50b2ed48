// asset(), rendition() streamed, generateRenditions(), the per-app concurrency cap, token refresh
// on 403 4300, and the catalog id changing under a client: over real HTTP against the mock.
import { Readable } from 'node:stream'
import tap, { test } from 'tap'
import { LightroomClient, LightroomInputError } from '../index.js'
import { revokeAtIms, signedInLightroom } from './helpers/lightroom.js'

const s = await signedInLightroom({
  lr: { library: { assets: 200, albums: 3 }, renditionDelayMs: 300, renditionSizes: { fullsize: 3_000_000 } },
  routes: (app) => {
    // What a partner's route does: the rendition flows through, the token never reaches the browser.
    app.get<{ Params: { id: string } }>('/photo/:id', async (request, reply) => {
      const rendition = await request.lightroomApi().rendition(request.params.id, '2048')
      if (rendition === null) return await reply.code(404).send({ missing: true })
      reply.type(rendition.contentType)
      if (rendition.contentLength !== undefined) reply.header('content-length', rendition.contentLength)
      return await reply.send(rendition.body)
    })
  }
})
tap.teardown(s.close)
const { app, ims, lr, sub } = s
const [firstId, secondId] = lr.library(sub).assetIds()

async function bytesOf (body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

test('asset(): the resource; null for an id Lightroom does not have', async (t) => {
  const asset = await app.lightroom.api(sub).asset(firstId!)
  t.equal(asset?.id, firstId)
  t.match(asset, { type: 'asset', payload: { captureDate: String, importSource: { fileName: String } } })
  t.equal(await app.lightroom.api(sub).asset('0'.repeat(32)), null)
})

test('rendition(): a JPEG stream with its type and length; sizes grow with the type; null when missing', async (t) => {
  const lrApi = app.lightroom.api(sub)
  let previous = 0
  for (const type of ['thumbnail2x', '640', '1280', '2048'] as const) {
    const rendition = await lrApi.rendition(firstId!, type)
    t.equal(rendition?.contentType, 'image/jpeg')
    const bytes = await bytesOf(rendition!.body)
    t.equal(bytes.length, rendition!.contentLength)
    t.same([bytes[0], bytes[1], bytes.at(-2), bytes.at(-1)], [0xff, 0xd8, 0xff, 0xd9], `${type}: SOI ... EOI`)
    t.ok(bytes.length > previous, `${type} is larger than the type before`)
    previous = bytes.length
  }
  t.equal(await lrApi.rendition(firstId!, 'fullsize'), null, 'fullsize only after generation')
  t.equal(await lrApi.rendition('0'.repeat(32), '640'), null)
})

test('a route streams a rendition through: same bytes as Lightroom sent', async (t) => {
  const direct = await bytesOf((await app.lightroom.api(sub).rendition(firstId!, '2048'))!.body)
  const res = await app.inject({ url: `/photo/${firstId!}`, headers: { cookie: s.cookie } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'image/jpeg')
  t.ok(res.rawPayload.equals(direct))
  t.equal((await app.inject({ url: `/photo/${'0'.repeat(32)}`, headers: { cookie: s.cookie } })).statusCode, 404)
})

test('generateRenditions(): POST with X-Generate-Renditions, HEAD-polled with backoff until ready', async (t) => {
  const sleeps: number[] = []
  const client = new LightroomClient({
    baseUrl: lr.origin,
    apiKey: ims.clients[0]!.clientId,
    accessToken: async (options) => await app.lightroom.tokenFor(sub, options),
    sleep: async (ms) => { sleeps.push(ms); await new Promise((resolve) => setTimeout(resolve, ms)) }
  })
  lr.resetCounts()
  t.same(await client.generateRenditions(firstId!, ['fullsize', '2560'], { pollDelayMs: 20 }), { ready: ['fullsize', '2560'] })
  const post = lr.requests().find((entry) => entry.endpoint === 'generateRenditions')
  t.equal(post?.method, 'POST')
  t.ok(lr.count('rendition') >= 3, 'polled with HEAD until ready')
  t.ok(sleeps.length >= 2 && sleeps.every((ms, i) => i === 0 || ms >= sleeps[i - 1]!), `backoff grows: ${sleeps.join(', ')}`)
  const full = await client.rendition(firstId!, 'fullsize')
  t.equal(full?.contentLength, 3_000_000)
  full?.body.destroy()

  const slow = await t.rejects(client.generateRenditions(secondId!, ['fullsize'], { timeoutMs: 30, pollDelayMs: 10 }))
  t.match(slow, { code: 'LR_API_ERROR', lightroomCode: 'LR_RENDITION_NOT_READY', statusCode: 504, transient: true })
  const bad: Array<[() => Promise<unknown>, string]> = [
    [async () => await client.generateRenditions(firstId!, ['2048' as 'fullsize']), 'types'],
    [async () => await client.generateRenditions(firstId!, []), 'types'],
    [async () => await client.generateRenditions('x', ['fullsize']), 'assetId'],
    [async () => await client.rendition(firstId!, 'huge' as '640'), 'type'],
    [async () => await client.rendition(`${firstId!.slice(0, 31)}/`, '640'), 'assetId'],
    [async () => await client.asset('../catalog'), 'assetId']
  ]
  lr.resetCounts()
  for (const [call, field] of bad) {
    const error = await t.rejects(call())
    t.type(error, LightroomInputError)
    t.match(error, { field })
  }
  t.equal(lr.count('*'), 0, 'refused before any request')
})

test('403 4300 (a dead token) → exactly one forced refresh and one retry; other 403s are not refreshes', async (t) => {
  const refreshes = ims.count('token:refresh_token')
  await revokeAtIms(ims, await app.lightroom.tokenFor(sub))
  lr.resetCounts()
  t.equal((await app.lightroom.api(sub).asset(firstId!))?.id, firstId)
  t.equal(ims.count('token:refresh_token'), refreshes + 1)
  t.equal(lr.count('catalog:403') + lr.count('asset:403'), 1, 'the first call met 4300, once')
  lr.fail('asset', { status: 403, body: 'while (1) {}\n{"code":"403003","description":"Api Key is invalid"}' })
  const error = await t.rejects(app.lightroom.api(sub).asset(firstId!))
  t.match(error, { statusCode: 403, lightroomCode: '403003' })
  t.equal(ims.count('token:refresh_token'), refreshes + 1, 'no refresh for a bad key')
})

test('a changed catalog id: the 404 "catalog does not exist" re-reads /v2/catalog once', async (t) => {
  const client = app.lightroom.api(sub)
  t.ok(await client.asset(firstId!))
  lr.resetCounts()
  lr.changeCatalogId(sub)
  t.equal((await client.asset(firstId!))?.id, firstId)
  t.equal(lr.count('catalog'), 1, 'read again')
  t.equal(lr.count('asset:404'), 1)
  t.equal(lr.count('asset:200'), 1)
})

test('the per-app concurrency cap: a held stream holds its slot; destroying it frees it', async (t) => {
  const client = new LightroomClient({ baseUrl: lr.origin, apiKey: ims.clients[0]!.clientId, accessToken: async () => await app.lightroom.tokenFor(sub), maxConcurrency: 2 })
  await client.asset(firstId!)
  lr.resetCounts()
  const a = await client.rendition(firstId!, '2048')
  const b = await client.rendition(secondId!, '2048')
  let third = false
  const c = client.rendition(firstId!, '640').then((r) => { third = true; return r })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(third, false, 'the third call waits for a slot')
  t.equal(lr.count('rendition'), 2)
  a!.body.destroy()
  const r = await c
  t.equal(third, true, 'a destroyed stream gave its slot back')
  await bytesOf(b!.body)
  await bytesOf(r!.body)
  t.throws(() => new LightroomClient({ baseUrl: lr.origin, apiKey: 'k', accessToken: async () => 't', maxConcurrency: 0 }), TypeError)
  t.throws(() => new LightroomClient({ baseUrl: lr.origin, apiKey: 'k', accessToken: async () => 't', limiter: {} as never }), TypeError)
})

test('the plugin option lightroomMaxConcurrency is checked at start-up', async (t) => {
  const { resolveOptions } = await import('../lib/options.js')
  const base = { clientId: 'c', clientSecret: 's', redirectUri: 'https://app.test/auth/lightroom/callback' }
  t.equal(resolveOptions(base).lightroomMaxConcurrency, 16)
  t.equal(resolveOptions({ ...base, lightroomMaxConcurrency: 4 }).lightroomMaxConcurrency, 4)
  for (const value of [0, 1.5, 300, '8']) t.throws(() => resolveOptions({ ...base, lightroomMaxConcurrency: value }), { code: 'LR_INVALID_OPTION', option: 'lightroomMaxConcurrency' })
})

test('Readable is the stream type handed out', async (t) => {
  const r = await app.lightroom.api(sub).rendition(firstId!, 'thumbnail2x')
  t.ok(r!.body instanceof Readable)
  r!.body.destroy()
})
