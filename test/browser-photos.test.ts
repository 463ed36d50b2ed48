/**
 * The example app's photo browser in real headless Chromium (the system's, through playwright-core)
 * against the mock IMS and a mock Lightroom with a seeded library: albums, an album's thumbnails
 * streamed through the app, a photo at 2048, an upload into the album. Screenshots go to
 * test/output/ (docs/screenshots/ holds the ones the README shows).
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { createMockIms, createMockLightroom } from '../lib/testing/index.js'
import { chromiumUnavailableReason, launchChromium } from './helpers/chromium.js'
import { freePort } from './helpers/ports.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'

const OUTPUT = fileURLToPath(new URL('./output/', import.meta.url))

interface ExampleApp {
  buildApp: (options: { imsDiscoveryUrl: string, lightroomBaseUrl: string, clientId: string, clientSecret: string, redirectUri: string }) => Promise<FastifyInstance>
}

await runUnlessUnavailable(chromiumUnavailableReason(), main)

async function main (): Promise<void> {
  await t.test('albums, an album\'s thumbnails, a photo at 2048, an upload: all through the app', photoBrowser)
}

async function photoBrowser (t: Test): Promise<void> {
  mkdirSync(OUTPUT, { recursive: true })
  const sub = 'PH0T0S00000000000000000@AdobeID'
  const ims = await createMockIms({ users: [{ sub, name: 'Ada Lovelace', email: 'ada@example.com' }] })
  t.teardown(ims.close)
  const lightroom = await createMockLightroom({ ims, library: { assets: 400, albums: 6 } })
  t.teardown(lightroom.close)
  const port = await freePort()
  const origin = `http://localhost:${port}`
  const { buildApp } = await t.mockImport<ExampleApp>('../example/app.js', { 'fastify-lightroom-ims': await import('../index.js') })
  const app = await buildApp({ imsDiscoveryUrl: ims.discoveryUrl, lightroomBaseUrl: lightroom.origin, clientId: 'test-client', clientSecret: 'test-secret', redirectUri: `${origin}/auth/lightroom/callback` })
  t.teardown(async () => { await app.close() })
  await app.listen({ host: 'localhost', port })
  const browser = await launchChromium()
  t.teardown(async () => { await browser.close() })
  const context = await browser.newContext({ viewport: { width: 860, height: 760 } })
  const page = await context.newPage()
  page.setDefaultTimeout(10_000)
  const problems: string[] = []
  // The browser's own favicon request is the one 404 expected.
  page.on('console', (message) => { if (message.type() === 'error' && !/favicon/.test(message.location().url)) problems.push(message.text()) })
  page.on('pageerror', (error) => { problems.push(error.message) })
  page.on('response', (response) => { if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) problems.push(`${response.status()} ${response.url()}`) })
  const library = lightroom.library(sub)

  await page.goto(`${origin}/me`)
  await page.waitForURL(`${origin}/me`)
  await page.getByRole('link', { name: 'Browse your photos' }).click()
  await page.waitForURL(`${origin}/albums`)
  const names = await page.locator('#albums a.album').allInnerTexts()
  t.same(names, library.albums().filter((album) => album.subtype !== 'collection_set').map((album) => album.name).sort(), 'every album, by name')

  const album = library.albums().find((entry) => entry.name === 'Iceland 2019')!
  await page.getByRole('link', { name: 'Iceland 2019' }).click()
  await page.waitForURL(`${origin}/albums/${album.id}`)
  const thumbnails = page.locator('#photos img')
  t.equal(await thumbnails.count(), 48, 'a grid of the newest 48')
  await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('#photos img')].every((img) => img.complete))
  t.ok(await everyImageDecoded(page, '#photos img'), 'every thumbnail is a JPEG the browser could decode')
  t.same(problems, [], 'no console error, no CSP violation, no failed request')
  await page.screenshot({ path: `${OUTPUT}photos-album.png` })

  await page.locator('#photos a.photo-link').first().click()
  await page.locator('#photo').waitFor()
  await page.waitForFunction(() => document.querySelector<HTMLImageElement>('#photo')?.complete === true)
  t.ok(await everyImageDecoded(page, '#photo'), 'the photo at 2048')
  t.match(await page.locator('#photo').getAttribute('src'), /^\/photos\/[0-9a-f]{32}\/2048$/, 'from this app, not from Lightroom')
  await page.screenshot({ path: `${OUTPUT}photos-photo.png` })

  // Upload: a real JPEG (one of the mock's renditions) into the album.
  await page.goto(`${origin}/albums/${album.id}`)
  const jpeg = await context.request.get(`${origin}/photos/${library.assetIds()[1]!}/640`)
  const bytes = await jpeg.body()
  const before = library.albumAssetIds(album.id).length
  await page.locator('#upload-file').setInputFiles({ name: 'from-the-browser.jpg', mimeType: 'image/jpeg', buffer: bytes })
  await Promise.all([page.waitForURL(`${origin}/albums/${album.id}?uploaded=1`), page.locator('#upload').click()])
  t.equal((await page.locator('#notice').innerText()).trim(), 'Your photo was uploaded to Lightroom.')
  const added = library.albumAssetIds(album.id)
  t.equal(added.length, before + 1, 'one more photo in the album')
  const uploaded = added.at(-1)!
  t.ok(library.master(uploaded)?.equals(bytes), 'Lightroom got the very bytes')
  t.match(await page.locator('#photos a.photo-link').first().getAttribute('href'), `/photos/${uploaded}`, 'newest first: the upload leads the grid')
  await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('#photos img')].every((img) => img.complete))
  t.ok(await everyImageDecoded(page, '#photos img'))
  await page.screenshot({ path: `${OUTPUT}photos-uploaded.png` })

  const html = await page.content()
  t.same(ims.issuedSecrets().filter((secret) => html.includes(secret)), [], 'no token in the page')
  const bad = await context.request.get(`${origin}/photos/..%2f..%2faccount/2048`, { maxRedirects: 0 })
  t.ok(bad.status() >= 400 && bad.status() < 500, 'a smuggled path is refused')
  t.same(problems, [])
}

async function everyImageDecoded (page: Page, selector: string): Promise<boolean> {
  return await page.locator(selector).evaluateAll((images) => images.every((img) => (img as HTMLImageElement).naturalWidth > 0))
}
