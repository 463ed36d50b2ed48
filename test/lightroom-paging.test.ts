// The paged lists over real HTTP: the plugin's client against the mock Lightroom's seeded library.
import tap, { test } from 'tap'
import { LightroomApiError, LightroomInputError, LightroomNotEntitledError } from '../index.js'
import { PREFIX, revokeAtIms, signedInLightroom } from './helpers/lightroom.js'

const s = await signedInLightroom({ lr: { library: { assets: 1200, albums: 12 } } })
tap.teardown(s.close)
const { app, ims, lr, sub } = s
const library = lr.library(sub)

test('assets(): every asset once, newest first, across many pages, pages longer than limit on ties', async (t) => {
  lr.resetCounts()
  const seen: string[] = []
  const dates: string[] = []
  for await (const asset of app.lightroom.api(sub).assets({ limit: 100 })) {
    seen.push(asset.id)
    dates.push(asset.payload!.captureDate!)
  }
  t.same(seen, library.assetIds(), 'no duplicate, none missing, in order')
  t.equal(new Set(seen).size, 1200)
  t.ok(lr.count('assets') >= 3, `${lr.count('assets')} pages`)
  t.same([...dates].sort().reverse(), dates, 'newest capture first')
  const pages = lr.requests().filter((entry) => entry.endpoint === 'assets')
  // Each next link starts below the last capture date of the page before: the page sizes follow.
  const cursors = pages.slice(1).map((entry) => new URL(entry.path, lr.origin).searchParams.get('captured_before')!)
  const sizes = cursors.map((cursor, i) => dates.filter((date) => date >= cursor && (i === 0 || date < cursors[i - 1]!)).length)
  t.ok(sizes.every((size) => size >= 100))
  // A walk whose first page ends inside a tie: that page runs past its limit.
  const tie = dates.findIndex((date, i) => date === dates[i + 1])
  t.ok(tie >= 0, 'the seeded library has assets sharing a capture second')
  const logged = lr.requests().length
  const again: string[] = []
  for await (const asset of app.lightroom.api(sub).assets({ limit: tie + 1 })) again.push(asset.id)
  t.same(again, seen, 'the same walk with another page size')
  const second = lr.requests().slice(logged).filter((entry) => entry.endpoint === 'assets')[1]!
  const cursor = new URL(second.path, lr.origin).searchParams.get('captured_before')!
  t.ok(dates.filter((date) => date >= cursor).length > tie + 1, 'the first page is longer than its limit')
  t.notOk(pages[0]!.path.includes('captured_before'))
  t.ok(pages.slice(1).every((entry) => /captured_before=/.test(entry.path) && /limit=100/.test(entry.path)), 'links.next, resolved against base')
  t.equal(new Set(pages.map((entry) => entry.accessToken)).size, 1, 'one token, asked for on every page')
})

test('assets(): filters go out as Lightroom names them', async (t) => {
  lr.resetCounts()
  const videos = []
  for await (const asset of app.lightroom.api(sub).assets({ subtype: ['video'], capturedAfter: '2020-01-01T00:00:00', capturedBefore: '2024-01-01T00:00:00', updatedSince: '2000-01-01T00:00:00', limit: 500 })) videos.push(asset)
  t.ok(videos.length > 0)
  t.ok(videos.every((asset) => asset.subtype === 'video' && asset.payload!.captureDate! > '2020' && asset.payload!.captureDate! < '2024'))
  const first = new URL(lr.requests().find((entry) => entry.path.includes('subtype=video'))!.path, lr.origin).searchParams
  t.same(Object.fromEntries(first), { updated_since: '2000-01-01T00:00:00', captured_after: '2020-01-01T00:00:00', captured_before: '2024-01-01T00:00:00', subtype: 'video', limit: '500' })
  const both = []
  for await (const asset of app.lightroom.api(sub).assets({ subtype: ['image', 'video'], limit: 500 })) both.push(asset.id)
  t.equal(both.length, 1200, "subtype ['image', 'video'] is sent as image;video")
})

test('albums(): by name, ties kept on one page; subtype as a string', async (t) => {
  const names: string[] = []
  for await (const album of app.lightroom.api(sub).albums({ limit: 1 })) names.push(album.payload!.name!)
  t.same(names, library.albums().map((album) => album.name).sort())
  t.equal(names.filter((name) => name === 'Family').length, 2, 'two albums named Family, both there')
  const projects = []
  for await (const album of app.lightroom.api(sub).albums({ subtype: 'project' })) projects.push(album)
  t.ok(projects.length > 0 && projects.every((album) => album.subtype === 'project' && album.serviceId === ims.clients[0]!.clientId))
})

test('albumAssets(): the embedded asset (id, subtype, payload), its album entry beside it, across pages', async (t) => {
  const album = library.albums().find((entry) => entry.assets > 80)!
  const items = []
  for await (const item of app.lightroom.api(sub).albumAssets(album.id, { limit: 40, subtype: ['image', 'video'] })) items.push(item)
  t.equal(items.length, album.assets)
  t.same(new Set(items.map((item) => item.id)), new Set(library.albumAssetIds(album.id)))
  t.ok(items.every((item) => typeof item.subtype === 'string' && typeof item.payload?.captureDate === 'string' && typeof item.albumAsset.payload?.order === 'string'))
  t.ok(lr.requests().filter((entry) => entry.endpoint === 'albumAssets').every((entry) => entry.path.includes('embed=asset')))
})

test('a token refresh in the middle of a long walk: the walk goes on, no item lost or repeated', async (t) => {
  const refreshes = ims.count('token:refresh_token')
  const seen: string[] = []
  for await (const asset of app.lightroom.api(sub).assets({ limit: 50 })) {
    seen.push(asset.id)
    if (seen.length === 300) await revokeAtIms(ims, await app.lightroom.tokenFor(sub))
  }
  t.same(seen, library.assetIds())
  t.equal(ims.count('token:refresh_token'), refreshes + 1, 'exactly one refresh')
  const tokens = new Set(lr.requests().filter((entry) => entry.endpoint === 'assets').map((entry) => entry.accessToken))
  t.ok(tokens.size >= 2, 'later pages carry the new token')
})

test('429 twice, then success; 5xx past the retries is a transient LightroomApiError', async (t) => {
  lr.resetCounts()
  lr.fail('assets', { status: 429 }, 2)
  let n = 0
  for await (const asset of app.lightroom.api(sub).assets({ limit: 500 })) n += asset.id.length > 0 ? 1 : 0
  t.equal(n, 1200)
  t.equal(lr.count('assets:429'), 2)
  lr.fail('albums', { status: 503 }, 4)
  const error = await t.rejects(app.lightroom.api(sub).albums().next())
  t.match(error, { statusCode: 503, transient: true })
  t.equal(lr.count('albums:503'), 4, 'one call and 3 retries')
})

test('a next link that leaves the Lightroom origin is refused: the token goes nowhere else', async (t) => {
  const foreign = (base: string, href: string): string => `${PREFIX}${JSON.stringify({ base, resources: [{ id: 'a'.repeat(32) }], links: { next: { href } } })}`
  for (const [base, href] of [['https://evil.example/v2/catalogs/x/', 'assets?limit=1'], [`${lr.origin}/v2/catalogs/x/`, 'https://evil.example/v2/x'], [`${lr.origin}/v2/catalogs/x/`, '//evil.example/v2/x'], [`${lr.origin}/v2/catalogs/x/`, '../../../admin']]) {
    lr.fail('assets', { status: 200, body: foreign(base!, href!) })
    lr.resetCounts()
    const walk = app.lightroom.api(sub).assets()
    t.equal((await walk.next()).value?.id, 'a'.repeat(32), 'the page itself is used')
    const error = await t.rejects(walk.next())
    t.match(error, { code: 'LR_API_ERROR', lightroomCode: 'LR_API_FOREIGN_LINK' }, `refused: ${base} + ${href}`)
    t.equal(lr.count('*') - lr.count('catalog'), 1, 'nothing more was requested')
  }
})

test('an AbortSignal stops a walk between pages', async (t) => {
  const controller = new AbortController()
  lr.resetCounts()
  const seen = []
  await t.rejects((async () => {
    for await (const asset of app.lightroom.api(sub).assets({ limit: 100, signal: controller.signal })) {
      seen.push(asset)
      if (seen.length === 150) controller.abort()
    }
  })(), { name: 'AbortError' })
  t.equal(lr.count('assets'), 2, 'no page after the abort')
})

test('bad input fails before any request, naming the field', async (t) => {
  lr.resetCounts()
  const lrApi = app.lightroom.api(sub)
  const bad: Array<[() => unknown, string]> = [
    [() => lrApi.assets({ limit: 501 }), 'limit'],
    [() => lrApi.assets({ limit: 0 }), 'limit'],
    [() => lrApi.assets({ capturedAfter: '2024-03-01' }), 'capturedAfter'],
    [() => lrApi.assets({ updatedSince: "2024-03-01T00:00:00'&x=1" }), 'updatedSince'],
    [() => lrApi.assets({ subtype: 'image' as unknown as string[] }), 'subtype'],
    [() => lrApi.assets({ subtype: ['image;video'] }), 'subtype[0]'],
    [() => lrApi.albums({ subtype: 'project&limit=1' }), 'subtype'],
    [() => lrApi.albumAssets('../../account'), 'albumId'],
    [() => lrApi.albumAssets('A'.repeat(32)), 'albumId'],
    [() => lrApi.assets({ signal: 'no' as unknown as AbortSignal }), 'signal']
  ]
  for (const [call, field] of bad) {
    const error = (() => { try { call(); return undefined } catch (e) { return e } })()
    t.type(error, LightroomInputError)
    t.match(error, { code: 'LR_INVALID_INPUT', statusCode: 400, field })
  }
  t.equal(lr.count('*'), 0, 'no request at all')
})

test('an account that may not use the API: LightroomNotEntitledError, no refresh', async (t) => {
  const refreshes = ims.count('token:refresh_token')
  lr.setUser(sub, { entitlement: 'trial_expired' })
  t.teardown(() => lr.setUser(sub, {}))
  const error = await t.rejects(app.lightroom.api(sub).assets().next())
  t.type(error, LightroomNotEntitledError)
  t.type(error, LightroomApiError)
  t.match(error, { code: 'LR_NOT_ENTITLED', statusCode: 403, lightroomCode: '4301' })
  t.equal(ims.count('token:refresh_token'), refreshes)
})
