// uploadAsset() and addToAlbum() over real HTTP against the mock: parts, sizes, duplicates, albums.
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import tap, { test } from 'tap'
import { LightroomInputError, LightroomNotEntitledError } from '../index.js'
import { signedInLightroom } from './helpers/lightroom.js'

const s = await signedInLightroom({ lr: { library: { assets: 300, albums: 6 } } })
tap.teardown(s.close)
const { app, ims, lr, sub } = s
const MB = 1024 * 1024

/** Deterministic, incompressible-looking bytes, streamed in 64 KB chunks of a pattern. */
function bytes (size: number, seed = 7): Buffer {
  const out = Buffer.alloc(size)
  let x = seed
  for (let i = 0; i < size; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out.writeUInt32LE(x, Math.min(i, size - 4))
  }
  return out
}

function streamOf (data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from((function * () { for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk) })())
}

test('a 25 MB stream in several parts, some in parallel, arrives byte-identical; importSource as Adobe asks', async (t) => {
  const data = bytes(25 * MB)
  const sha256 = createHash('sha256').update(data).digest('hex')
  lr.resetCounts()
  const album = lr.library(sub).albums().find((entry) => entry.subtype === 'collection')!
  const result = await app.lightroom.api(sub).uploadAsset({
    body: streamOf(data), size: data.length, fileName: 'big.jpg', contentType: 'image/jpeg', sha256, partSize: 8 * MB, parallelParts: 2, albumId: album.id, captureDate: '2024-03-01T10:00:00'
  })
  t.equal(result.status, 'created')
  t.match(result.assetId, /^[0-9a-f]{32}$/)
  const master = lr.library(sub).master(result.assetId)
  t.equal(master?.length, data.length)
  t.ok(master?.equals(data), 'byte-identical')
  const parts = lr.requests().filter((entry) => entry.endpoint === 'master')
  t.equal(parts.length, 4, '8 + 8 + 8 + 1 MB')
  t.equal(lr.count('master:201'), 4)
  const asset = await app.lightroom.api(sub).asset(result.assetId)
  const account = await app.lightroom.api(sub).account()
  t.match(asset?.payload, {
    captureDate: '2024-03-01T10:00:00',
    importSource: { fileName: 'big.jpg', fileSize: data.length, sha256, importedOnDevice: ims.clients[0]!.clientId, importedBy: account.id, importTimestamp: String }
  })
  t.ok(lr.library(sub).albumAssetIds(album.id).includes(result.assetId), 'added to the album')
  t.equal(lr.library(sub).assetIds()[0] === result.assetId || lr.library(sub).assetIds().includes(result.assetId), true)
})

test('a small Buffer goes in one call without Content-Range; sha256 is computed; skipIfExists gives "duplicate"', async (t) => {
  const data = bytes(300_000, 11)
  const lrApi = app.lightroom.api(sub)
  const first = await lrApi.uploadAsset({ body: data, size: data.length, fileName: 'small.jpg', contentType: 'image/jpeg', skipIfExists: true })
  t.equal(first.status, 'created')
  t.ok(lr.library(sub).master(first.assetId)?.equals(data))
  lr.resetCounts()
  const again = await lrApi.uploadAsset({ body: data, size: data.length, fileName: 'copy.jpg', contentType: 'image/jpeg', skipIfExists: true })
  t.same(again, { assetId: first.assetId, status: 'duplicate' }, 'the asset Lightroom already had')
  t.equal(lr.count('createAsset:412'), 1)
  t.equal(lr.count('master'), 0, 'nothing uploaded')
})

test('a body shorter or longer than size: reported; small bodies before anything is created, large ones never completed', async (t) => {
  const lrApi = app.lightroom.api(sub)
  const before = lr.library(sub).assetIds().length
  lr.resetCounts()
  for (const [body, size] of [[bytes(1000), 1200], [bytes(1000), 900], [streamOf(bytes(1000), 100), 1200], [streamOf(bytes(1000), 100), 900]] as const) {
    const error = await t.rejects(lrApi.uploadAsset({ body, size, fileName: 'x.jpg', contentType: 'image/jpeg' }))
    t.type(error, LightroomInputError)
    t.match(error, { field: 'body', assetId: undefined })
  }
  t.equal(lr.count('createAsset'), 0, 'no asset created for a small body of the wrong size')

  const short = await t.rejects(lrApi.uploadAsset({ body: streamOf(bytes(2_500_000)), size: 3 * MB, fileName: 'short.jpg', contentType: 'image/jpeg', partSize: MB }))
  t.match(short, { code: 'LR_INVALID_INPUT', field: 'body', message: /ended after 2500000 bytes/ })
  const shortId = (short as LightroomInputError).assetId!
  t.equal(lr.library(sub).master(shortId), undefined, 'the original was never completed')
  const long = await t.rejects(lrApi.uploadAsset({ body: streamOf(bytes(3 * MB + 5)), size: 3 * MB, fileName: 'long.jpg', contentType: 'image/jpeg', partSize: MB }))
  t.match(long, { field: 'body', message: /longer than/ })
  t.equal(lr.library(sub).master((long as LightroomInputError).assetId!), undefined, 'the last part was withheld')
  t.equal(lr.library(sub).assetIds().length, before, 'neither is listed as an asset')
})

test('upload input is checked before any request', async (t) => {
  const lrApi = app.lightroom.api(sub)
  const ok = { body: bytes(10), size: 10, fileName: 'a.jpg', contentType: 'image/jpeg' }
  const bad: Array<[Record<string, unknown>, string]> = [
    [{ body: 'text' }, 'body'], [{ size: 0 }, 'size'], [{ size: 10.5 }, 'size'], [{ fileName: '../etc/passwd' }, 'fileName'], [{ fileName: '' }, 'fileName'],
    [{ contentType: 'text/html' }, 'contentType'], [{ captureDate: 'yesterday' }, 'captureDate'], [{ albumId: 'nope' }, 'albumId'],
    [{ sha256: 'abc' }, 'sha256'], [{ sha256: 'a'.repeat(64) }, 'sha256'], [{ partSize: 300 * MB }, 'partSize'], [{ partSize: 10 }, 'partSize'],
    [{ parallelParts: 0 }, 'parallelParts'], [{ body: streamOf(bytes(10)), skipIfExists: true }, 'skipIfExists'], [{ subtype: 'audio' }, 'subtype']
  ]
  lr.resetCounts()
  for (const [change, field] of bad) {
    const error = await t.rejects(lrApi.uploadAsset({ ...ok, ...change } as never))
    t.match(error, { code: 'LR_INVALID_INPUT', field }, `${JSON.stringify(Object.keys(change))} → ${field}`)
  }
  t.equal(lr.count('*'), 0)
})

test('an account that may not upload: LightroomNotEntitledError before any asset is created', async (t) => {
  lr.setUser(sub, { entitlement: 'subscriber_expired' })
  t.teardown(() => lr.setUser(sub, {}))
  lr.resetCounts()
  const error = await t.rejects(app.lightroom.api(sub).uploadAsset({ body: bytes(10), size: 10, fileName: 'a.jpg', contentType: 'image/jpeg' }))
  t.type(error, LightroomNotEntitledError)
  t.equal(lr.count('createAsset'), 0)
})

test('addToAlbum(): batches of 50; per-asset refusals are reported, not thrown; an add of nothing is no refresh', async (t) => {
  const library = lr.library(sub)
  const album = library.albums().find((entry) => entry.subtype === 'project')!
  const outside = library.assetIds().filter((id) => !library.albumAssetIds(album.id).includes(id)).slice(0, 119)
  const unknown = 'f'.repeat(32)
  lr.resetCounts()
  const result = await app.lightroom.api(sub).addToAlbum(album.id, [...outside, unknown, outside[0]!])
  t.equal(lr.count('addToAlbum'), 3, '120 distinct ids: 50 + 50 + 20')
  t.same(result.added, outside)
  t.same(result.failed, [{ id: unknown, code: '1000', description: 'Resource not found' }])
  const refreshes = ims.count('token:refresh_token')
  const again = await app.lightroom.api(sub).addToAlbum(album.id, outside.slice(0, 3))
  t.same(again.added, [])
  t.same(again.failed.map((entry) => entry.code), ['1002', '1002', '1002'])
  t.equal(lr.count('addToAlbum:403'), 1)
  t.equal(ims.count('token:refresh_token'), refreshes)
  t.match(await t.rejects(app.lightroom.api(sub).addToAlbum(album.id, ['x'])), { field: 'assetIds[0]' })
  t.match(await t.rejects(app.lightroom.api(sub).addToAlbum('0'.repeat(32), [outside[0]!])), { statusCode: 404, lightroomCode: '1000' })
})
