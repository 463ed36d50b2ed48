// A 20 MB rendition streamed through a host app's route, in a process of its own whose RSS is
// sampled while it serves: it must grow by less than twice the rendition (a buffered copy alone
// would be the whole size, and Node's Buffer handling usually doubles it).
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'tap'
import { request } from 'undici'
import { signedInLightroom } from './helpers/lightroom.js'

const SIZE = 20 * 1024 * 1024

test('a 20 MB rendition through a route: the host process grows by less than twice its size', async (t) => {
  const s = await signedInLightroom({ lr: { library: { assets: 5, albums: 1 }, renditionSizes: { fullsize: SIZE }, renditionDelayMs: 0 } })
  t.teardown(s.close)
  const assetId = s.lr.library(s.sub).assetIds()[0]!
  await s.app.lightroom.api(s.sub).generateRenditions(assetId, ['fullsize'], { pollDelayMs: 5 })
  const token = await s.app.lightroom.tokenFor(s.sub)
  const child = fork(new URL('./fixtures/rendition-host.ts', import.meta.url), [JSON.stringify({ baseUrl: s.lr.origin, apiKey: s.ims.clients[0]!.clientId, token })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, '--expose-gc']
  })
  t.teardown(() => { if (child.connected) child.disconnect() })
  const [ready] = await once(child, 'message') as [{ port: number }]
  const base = `http://127.0.0.1:${ready.port}`
  // Warm up (code loaded, sockets open), then take the baseline.
  for (let i = 0; i < 3; i++) await (await request(`${base}/photo/${assetId}/640`)).body.text()
  child.send({ type: 'baseline' })
  await once(child, 'message')

  const res = await request(`${base}/photo/${assetId}/fullsize`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'image/jpeg')
  let received = 0
  let first: Buffer | undefined
  for await (const chunk of res.body) {
    first ??= chunk as Buffer
    received += (chunk as Buffer).length
    // A slow reader: the route must wait for it instead of buffering ahead.
    if (received % (2 * 1024 * 1024) < 65536) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.equal(received, SIZE)
  t.same([first?.[0], first?.[1]], [0xff, 0xd8], 'a JPEG')
  child.send({ type: 'rss?' })
  const [rss] = await once(child, 'message') as [{ baseline: number, peak: number }]
  const growth = rss.peak - rss.baseline
  t.comment(`host RSS grew by ${(growth / 1024 / 1024).toFixed(1)} MB while streaming ${SIZE / 1024 / 1024} MB`)
  t.ok(growth < 2 * SIZE, 'RSS growth below twice the rendition')
})
