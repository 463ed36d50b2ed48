/**
 * The example app in a real browser: headless Chromium (playwright-core, the system's Chromium)
 * against `node example/demo.js`, which runs the package as a partner installs it (the built dist/,
 * imported by its own name) with the mock IMS, its consent page, and the mock Lightroom API, all on
 * loopback. Needs `npm run build` first. The failure pages are driven against the same app built in
 * this process, where the mocks can be told to fail.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { createMockIms, createMockLightroom } from '../lib/testing/index.js'
import { chromiumUnavailableReason, launchChromium } from './helpers/chromium.js'
import { freePort } from './helpers/ports.js'
import { runUnlessUnavailable } from './helpers/system-dependency.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SCREENSHOT = fileURLToPath(new URL('./output/signed-in.png', import.meta.url))
const START_TIMEOUT_MS = 15_000
const STEP_TIMEOUT_MS = 10_000
/** What the demo's mock issues (example/demo.js). */
const ACCESS_TOKEN_MS = 15 * 60_000
/** A JWT, as the mock IMS's access, refresh and id tokens are: none may reach the browser. */
const JWT = /eyJ[\w-]{8,}\.[\w-]{8,}\./

/** example/app.js, which is JavaScript: the part of its shape this test uses. */
interface ExampleApp {
  buildApp: (options: {
    imsDiscoveryUrl: string
    lightroomBaseUrl: string
    clientId: string
    clientSecret: string
    redirectUri: string
  }) => Promise<FastifyInstance>
}

interface ConsoleError { text: string, url: string }

interface LogLine { msg?: string, [field: string]: unknown }

interface Demo {
  url: string
  /** Everything it printed so far, for failure messages. */
  output: () => string
  /** Resolves with the first JSON log line matching, waiting for it if need be. */
  waitForLog: (match: (line: LogLine) => boolean, what: string) => Promise<LogLine>
  /** SIGTERM, then SIGKILL if it has not exited 5 s later. Safe to call twice. */
  stop: () => Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

await runUnlessUnavailable(chromiumUnavailableReason(), main)

async function main (): Promise<void> {
  const started = Date.now()
  checkBuild()
  mkdirSync(join(SCREENSHOT, '..'), { recursive: true })
  // finally blocks rather than t.teardown: an exception here (Chromium failing to start, say) ends the
  // process before tap would run its teardowns, and the demo would be left running.
  const demo = await startDemo()
  try {
    const browser = await launchChromium()
    try {
      await flows(demo, browser)
    } finally {
      await browser.close()
    }
  } finally {
    if (!t.passing()) console.error(`--- demo output ---\n${demo.output()}`)
    await demo.stop()
  }
  t.comment(`browser test took ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

async function flows (demo: Demo, browser: Browser): Promise<void> {
  await t.test('sign in, see the Lightroom account, refresh the token, sign out', async (t) => {
    const { context, page, consoleErrors } = await newPage(t, browser)

    await page.goto(demo.url)
    t.equal(await page.title(), 'Welcome · Lightroom partner demo')
    await page.click('#sign-in')
    await page.getByRole('heading', { name: 'Allow access?' }).waitFor()
    t.not(new URL(page.url()).origin, demo.url, 'the consent page is Adobe\'s (the mock IMS), not the app\'s')

    await Promise.all([page.waitForURL(`${demo.url}/me`), page.getByRole('button', { name: 'Allow' }).click()])
    t.equal(await text(page, '#user-name'), 'Ada Lovelace')
    t.equal(await text(page, '#user-email'), 'ada@example.com')
    t.equal(await text(page, '#entitlement'), 'Subscriber')
    t.equal(await text(page, '#storage'), '49 GB of 1 TB used (5%)', 'storage in readable units')
    t.equal(await text(page, '#catalog-name'), 'Ada\'s Catalog', 'the catalog name, escaped and shown as is')
    const signIn = await demo.waitForLog((line) => line.msg === 'lightroom: user signed in', 'the sign-in audit line')
    t.type(signIn.userId, 'string', 'the audit log names the user')

    t.notMatch(await page.content(), JWT, 'no token in the page')
    const cookies = await context.cookies()
    t.ok(cookies.length > 0 && cookies.every((cookie) => !JWT.test(cookie.value)), 'the browser holds a session cookie, never a token')
    t.ok(cookies.every((cookie) => cookie.httpOnly && cookie.sameSite === 'Lax'), 'cookies are HttpOnly and SameSite=Lax')

    const before = await tokenLifetime(page)
    const left = before.expiresAt - Date.now()
    t.ok(left > ACCESS_TOKEN_MS - 60_000 && left <= ACCESS_TOKEN_MS, `a fresh token has about 15 minutes left (${left} ms)`)
    t.match(before.text, /^expires in 1[45] min \d+ s \(at \d\d:\d\d:\d\d UTC\)/, 'the remaining lifetime, readable')

    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    t.comment(`screenshot of the signed-in page: ${relative(ROOT, SCREENSHOT)}`)

    await Promise.all([page.waitForURL(`${demo.url}/me?refreshed=1`), page.click('#refresh-now')])
    t.equal(await text(page, '#notice'), 'A new access token was fetched from Adobe.')
    const refresh = await demo.waitForLog((line) => line.msg === 'lightroom: access token refreshed' && line.reason === 'forced', 'the forced refresh audit line')
    t.ok(Number(refresh.accessExpiresAt) > Date.now() + ACCESS_TOKEN_MS - 60_000, 'IMS issued a new, full-length access token')
    t.equal(await text(page, '#user-name'), 'Ada Lovelace', 'the page still reads Lightroom with the new token')
    const after = await tokenLifetime(page)
    t.ok(after.expiresAt > before.expiresAt, 'the page shows the new token\'s later expiry')
    t.equal(after.expiresAt, refresh.accessExpiresAt, 'the page describes the token the refresh produced')

    await Promise.all([page.waitForURL(`${demo.url}/`), page.click('#sign-out')])
    await page.locator('#sign-in').waitFor()
    t.equal(await page.locator('#sign-out').count(), 0, 'signed out: the start page offers to sign in again')
    const signOut = await demo.waitForLog((line) => line.msg === 'lightroom: user signed out', 'the sign-out audit line')
    t.equal(signOut.reason, 'signed_out')
    const me = await context.request.get(`${demo.url}/me`, { maxRedirects: 0, headers: { accept: 'text/html' } })
    t.equal(me.status(), 302, '/me now sends the browser to sign in')
    t.equal(me.headers().location, '/auth/lightroom/login?returnTo=%2Fme')
    await page.goto(`${demo.url}/me`)
    await page.getByRole('heading', { name: 'Allow access?' }).waitFor()
    t.pass('following it lands on Adobe\'s consent page again')

    // The browser's own favicon requests (the mock IMS has none) are not the pages' doing.
    const appErrors = consoleErrors.filter((error) => error.url.startsWith(demo.url) && new URL(error.url).pathname !== '/favicon.ico')
    t.same(appErrors, [], 'no console errors on the app\'s pages (nothing blocked by the Content-Security-Policy)')
  })

  await t.test('denying consent at Adobe shows a clear message and signs nobody in', async (t) => {
    const { context, page } = await newPage(t, browser)
    await page.goto(demo.url)
    await page.click('#sign-in')
    await page.getByRole('heading', { name: 'Allow access?' }).waitFor()
    const [callback] = await Promise.all([
      page.waitForResponse((response) => new URL(response.url()).pathname === '/auth/lightroom/callback'),
      page.getByRole('button', { name: 'Deny' }).click()
    ])
    t.equal(callback.status(), 401)
    await page.locator('#message').waitFor()
    t.equal(await text(page, 'h1'), 'Sign-in did not complete')
    t.equal(await text(page, '#message'), 'Sign-in was not completed at Adobe (access_denied)')
    t.equal(await page.getByRole('link', { name: 'Try signing in again' }).count(), 1, 'with a way to start over')
    const me = await context.request.get(`${demo.url}/me`, { maxRedirects: 0, headers: { accept: 'text/html' } })
    t.equal(me.status(), 302, 'still signed out')
  })

  await t.test('Lightroom data is escaped, and failures show friendly pages that lead back', async (t) => {
    // The example app again, in this process this time, so that the mocks can be told to fail; and on
    // the sources (lib/) rather than dist/, through tap's module mocking.
    const name = '<img src=x onerror="document.title=\'pwned\'"> Ada & "Co"'
    const sub = 'E5CAPE0000000000000000000@AdobeID'
    const ims = await createMockIms({ users: [{ sub, name, email: 'ada@example.com' }] })
    t.teardown(ims.close)
    const lightroom = await createMockLightroom({ ims })
    t.teardown(lightroom.close)
    const origin = `http://localhost:${await freePort()}`
    const { buildApp } = await t.mockImport<ExampleApp>('../example/app.js', { 'fastify-lightroom-ims': await import('../index.js') })
    const app = await buildApp({
      imsDiscoveryUrl: ims.discoveryUrl,
      lightroomBaseUrl: lightroom.origin,
      clientId: 'test-client',
      clientSecret: 'test-secret',
      redirectUri: `${origin}/auth/lightroom/callback`
    })
    t.teardown(async () => { await app.close() })
    await app.listen({ host: 'localhost', port: Number(new URL(origin).port) })
    const { page } = await newPage(t, browser)

    // Without consent: the mock IMS sends the browser straight back.
    await page.goto(`${origin}/me`)
    await page.waitForURL(`${origin}/me`)
    t.equal(await text(page, '#user-name'), name, 'a name full of markup is shown as text')
    t.equal(await page.locator('#user-name img').count(), 0, 'and makes no element')
    t.equal(await page.title(), 'Your account · Lightroom partner demo', 'nor runs anything')
    const seen = `${await page.content()}\n${JSON.stringify(await page.context().cookies())}`
    t.same(ims.issuedSecrets().filter((secret) => seen.includes(secret)), [], 'no token or code the IMS issued is in the page or the cookies')

    lightroom.fail('account', { status: 403 })
    const refused = await page.goto(`${origin}/me`)
    t.equal(refused?.status(), 502)
    t.equal(await text(page, '#error-title'), 'Lightroom refused the request')
    t.equal(await text(page, '.hint'), 'Error code: 403')
    t.notMatch(await page.content(), /LightroomApiError|\bat .+\.(?:js|ts):\d+/, 'no error name, no stack')
    await page.getByRole('link', { name: 'Try again' }).click()
    await page.locator('#user-name').waitFor()
    t.pass('"Try again" works once Lightroom does')

    lightroom.setUser(sub, { hasCatalog: false })
    await page.goto(`${origin}/me`)
    t.equal(await text(page, '#catalog-name'), 'no catalog yet', 'a user who never opened Lightroom has no catalog, which is no error')
    lightroom.setUser(sub, { entitlement: 'trial_expired' })
    const catalogCalls = lightroom.count('catalog')
    await page.goto(`${origin}/me`)
    t.equal(await text(page, '#entitlement'), 'Trial expired')
    t.equal(await text(page, '#catalog-name'), 'not available on this plan')
    t.equal(lightroom.count('catalog'), catalogCalls, 'without an entitlement the catalog is not even asked for')
    lightroom.setUser(sub, {})

    // The user disconnects the app in their Adobe account: Lightroom refuses the token, the client
    // forces one refresh, IMS refuses the grant, and the user has to sign in again.
    ims.revokeConsent(sub)
    const ended = await page.goto(`${origin}/me`)
    t.equal(ended?.status(), 401)
    t.equal(await text(page, '#error-title'), 'Please sign in again')
    await Promise.all([page.waitForURL(`${origin}/me`), page.getByRole('link', { name: 'Sign in with Adobe' }).click()])
    t.equal(await text(page, '#user-name'), name, 'signing in again brings the account back')
  })

  await t.test('the demo shuts down cleanly on SIGTERM', async (t) => {
    await browser.close()
    t.same(await demo.stop(), { code: 0, signal: null })
  })
}

/** The demo imports the package by its name, that is dist/: it must exist, and should be current. */
function checkBuild (): void {
  const built = join(ROOT, 'dist', 'index.js')
  if (!existsSync(built)) throw new Error('dist/ is missing: run `npm run build` before the browser test (npm install and npm ci do it)')
  const newest = (dir: string): number => Math.max(0, ...readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => statSync(join(dir, file)).mtimeMs))
  if (Math.max(newest(join(ROOT, 'lib')), statSync(join(ROOT, 'index.ts')).mtimeMs) > statSync(built).mtimeMs) {
    t.comment('lib/ is newer than dist/: the demo runs the last build; run `npm run build` to test the current code')
  }
}

async function startDemo (): Promise<Demo> {
  // Only what the demo needs: above all not the developer's IMS_CLIENT_ID, which would mean the real Adobe.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, PORT: '0', LOG_LEVEL: 'info', NODE_ENV: 'test' }
  const child = spawn(process.execPath, ['example/demo.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  // Last resort, should this process end abruptly (a tap timeout): never leave the demo behind.
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit)
      resolve({ code, signal })
    })
  })
  const output = (): string => `${stdout}${stderr === '' ? '' : `\n[stderr]\n${stderr}`}`

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the demo printed no URL within ${START_TIMEOUT_MS} ms:\n${output()}`)) }, START_TIMEOUT_MS)
    const onData = (): void => {
      const match = /^Demo running at (http:\/\/localhost:\d+)$/m.exec(stdout)
      if (match === null) return
      clearTimeout(timer)
      child.stdout.off('data', onData)
      resolve(match[1]!)
    }
    child.stdout.on('data', onData)
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`the demo exited (${code ?? signal}) before it was ready:\n${output()}`))
    }, reject)
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL')
    throw error
  })

  const logLines = (): LogLine[] => stdout.split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine)

  return {
    url,
    output,
    async waitForLog (match, what) {
      const deadline = Date.now() + STEP_TIMEOUT_MS
      for (;;) {
        const line = logLines().find(match)
        if (line !== undefined) return line
        if (Date.now() > deadline) throw new Error(`the demo never logged ${what}:\n${output()}`)
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    },
    async stop () {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(timer)
      }
      return await exited
    }
  }
}

/** A fresh browser context (no cookies) with one page; closed when the test ends. */
async function newPage (t: Test, browser: Browser): Promise<{ context: BrowserContext, page: Page, consoleErrors: ConsoleError[] }> {
  const context = await browser.newContext()
  t.teardown(async () => { await context.close() })
  const page = await context.newPage()
  page.setDefaultTimeout(STEP_TIMEOUT_MS)
  const consoleErrors: ConsoleError[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push({ text: message.text(), url: message.location().url || page.url() })
  })
  page.on('pageerror', (error) => { consoleErrors.push({ text: error.message, url: page.url() }) })
  return { context, page, consoleErrors }
}

async function text (page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).innerText()).trim()
}

/** The lifetime cell: its text and the expiry (epoch ms) it carries. */
async function tokenLifetime (page: Page): Promise<{ text: string, expiresAt: number }> {
  const cell = page.locator('#token-lifetime')
  const text = (await cell.textContent() ?? '').replace(/\s+/g, ' ').trim()
  const expiresAt = Number(await cell.getAttribute('data-expires-at'))
  if (!Number.isFinite(expiresAt) || expiresAt <= 0) throw new Error(`#token-lifetime carries no expiry: ${text}`)
  return { text, expiresAt }
}
