// Fuzz: generated requests to the login, callback and logout routes with hostile query strings,
// cookies, headers and bodies. Seeded (LR_TEST_SEED replays a run), through app.inject.
//   Part A: 10,000 requests that never carry a genuine state + state-cookie pair: no 5xx, no
//           unhandled rejection, no off-origin Location, no token call, nothing stored.
//   Part B: 400 callbacks that do carry a genuine pair, with everything else fuzzed: exactly the
//           expected token calls, 5xx only for injected upstream failures, redirects stay home.
import { test, type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import type { MockImsFault } from '../lib/testing/index.js'
import { CALLBACK, LOGIN, LOGOUT, authorizeAs, cookieNames, setCookies, startLogin, type StartedLogin } from './helpers/flows.js'
import { seededRng, testSeed, type Rng } from './helpers/prng.js'
import { APP_ORIGIN, harness, signInRecords, type Harness } from './helpers/setup.js'

/** Default seed: `npm test` is deterministic; LR_TEST_SEED explores others. */
const SEED = 0xF022_0006
const ADVERSARIAL_REQUESTS = 10_000
const GENUINE_PAIR_REQUESTS = 400
const CONCURRENCY = 100
const NAMES = cookieNames(true)
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** returnTo values that browsers may read as another origin, or that are just nasty. */
const EVIL_RETURN_TO = [
  '//evil.example', '/\\evil.example', '\\\\evil.example', 'https:evil.example', 'https://evil.example/', 'http:/evil.example',
  '/.//evil.example', '/..//evil.example', '/x/../..//evil.example', '///evil.example', '/\t/evil.example', '/\n/evil.example',
  '/\r\n/evil.example', ' //evil.example', '\u0000//evil.example', '/%2F/evil.example', '/%5Cevil.example', '%2F%2Fevil.example',
  '//evil.example@app.test', '/@evil.example', 'https://app.test@evil.example/', '//%65vil.example', 'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>', '/\u2215\u2215evil.example', '\uFF0F\uFF0Fevil.example', '/\u3002/evil.example',
  'evil.example', '', '/', '/photos?x=1#frag', '/\u202Egnp.exe', `/${'a'.repeat(3000)}`
]
const PERCENT_GARBAGE = ['%', '%zz', '%E0%A4%A', '%%%', '%00', '%C0%AF', '%u002F', '%2', '%FF%FE', '%ED%A0%80', '%25%32%46']
const UNICODE = ['\u00e9', '\u{1F600}', '\u202E', '\u0301', '\uD800', '\uFEFF', '\u0000', '\t', '\n', '\r', ' ', '"', '<', '>', '\'', '\\', ';', ',', '=', '&', '?', '#']
const MARKUP = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', '</p><h1>owned</h1>']
const PARAM_NAMES = ['returnTo', 'state', 'code', 'error', 'error_description', 'session_state', 'iss', 'returnTo[]', 'state[]', 'code[]', '__proto__', 'constructor[prototype][x]', '', 'toString']
const ACCEPTS = [undefined, 'text/html', 'application/json', '*/*', 'text/html,application/xhtml+xml', 'text/html\u0000', '']
const ORIGINS = [undefined, APP_ORIGIN, 'https://evil.example', 'null', 'https://app.test.evil.example', 'http://app.test', 'https://APP.TEST', 'https://app.test:443', '']
const FETCH_SITES = [undefined, 'cross-site', 'same-site', 'same-origin', 'none', 'CROSS-SITE']
const CONTENT_TYPES = [undefined, 'application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7', '\u0000']
const FAULTS: readonly MockImsFault[] = [{ status: 500 }, { status: 503, retryAfter: 1 }, { reset: true }]

/** A hostile string: one of the classics, or random pieces of percent garbage, unicode and markup. */
function nasty (rng: Rng, logins: readonly StartedLogin[]): string {
  switch (rng.int(0, 10)) {
    case 0: return rng.pick(EVIL_RETURN_TO)
    case 1: return encodeURIComponent(rng.pick(EVIL_RETURN_TO))
    case 2: return encodeURIComponent(encodeURIComponent(rng.pick(EVIL_RETURN_TO)))
    case 3: return rng.pick(PERCENT_GARBAGE)
    case 4: return rng.pick(MARKUP)
    case 5: return rng.chance(0.1) ? 'A'.repeat(rng.int(4097, 200_000)) : rng.string(rng.int(0, 200), B64URL)
    case 6: return rng.pick(logins).state
    case 7: {
      // A genuine state, slightly off: one character changed, cut, or padded.
      const state = rng.pick(logins).state
      const at = rng.int(0, state.length)
      return rng.pick([`${state.slice(0, at)}${state[at] === 'A' ? 'B' : 'A'}${state.slice(at + 1)}`, state.slice(0, -1), `${state}=`, `${state}%00`, ` ${state}`])
    }
    default: {
      let out = ''
      for (let i = rng.int(1, 12); i > 0; i--) out += rng.pick([...PERCENT_GARBAGE, ...UNICODE, rng.string(rng.int(1, 8), B64URL)])
      return out
    }
  }
}

/** encodeURIComponent, with lone surrogates (which it refuses) replaced first. */
function encode (text: string): string {
  return encodeURIComponent(text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'))
}

function fuzzPath (rng: Rng, route: string): string {
  if (rng.chance(0.85)) return route
  return rng.pick([`${route}/`, route.toUpperCase(), `${route}%zz`, `/${route}`, `${route};jsessionid=x`, `${route}/..`, `${route}%2F..`, `${route}%00`, `${route}\u00e9`])
}

/** Cookies a hostile browser (or a sibling subdomain) might send: never the state cookie matching the query's state. */
function fuzzCookies (rng: Rng, logins: readonly StartedLogin[]): string[] {
  const cookies: string[] = []
  for (let i = rng.int(0, 5); i > 0; i--) {
    const login = rng.pick(logins)
    cookies.push(rng.pick([
      `${NAMES.session}=${rng.string(43, B64URL)}.${rng.string(43, B64URL)}`,
      `${NAMES.session}=${rng.string(43, B64URL)}`,
      `${NAMES.session}=${nasty(rng, logins)}`,
      `lr_session=${rng.string(43, B64URL)}.${rng.string(43, B64URL)}`,
      `${NAMES.state}=${login.state}`,
      `${NAMES.verifier}=${login.verifier}`,
      `lr_oauth_state=${login.state}`,
      `${NAMES.state}=${nasty(rng, logins)}`,
      `${NAMES.verifier}=${nasty(rng, logins)}`,
      `${rng.string(rng.int(1, 10), B64URL)}=${nasty(rng, logins)}`,
      '=;;;==', ';', 'a', '%zz=%zz', `big=${'x'.repeat(rng.int(1, 20_000))}`
    ]))
  }
  return cookies
}

interface Generated { options: InjectOptions, route: string }

function adversarialRequest (rng: Rng, logins: readonly StartedLogin[]): Generated {
  const route = rng.pick([LOGIN, CALLBACK, CALLBACK, LOGOUT])
  const params: Array<[string, string]> = []
  for (let i = rng.int(0, 7); i > 0; i--) params.push([rng.chance(0.85) ? rng.pick(PARAM_NAMES) : nasty(rng, logins), nasty(rng, logins)])
  if (rng.chance(0.3)) params.push(...params.slice(0, rng.int(1, 3))) // duplicated parameters
  let cookies = fuzzCookies(rng, logins)
  if (rng.chance(0.15)) {
    // Login CSRF: the attacker's genuine state on the victim's callback, with the victim's own flow cookies.
    const [attacker, victim] = [rng.pick(logins), rng.pick(logins)]
    if (attacker !== victim) {
      params.push(['state', attacker.state], ['code', rng.string(43, B64URL)])
      cookies.push(`${NAMES.state}=${victim.state}`, `${NAMES.verifier}=${victim.verifier}`)
    }
  }
  // By construction a request here never pairs a query state with the same state in the cookie.
  const queryStates = new Set(params.filter(([name]) => name === 'state').map(([, value]) => value))
  cookies = cookies.filter((cookie) => !cookie.startsWith(`${NAMES.state}=`) || !queryStates.has(cookie.slice(NAMES.state.length + 1)))

  const query = params.map(([name, value]) => (rng.chance(0.2) ? name : `${name}=${value}`)).join('&')
  const headers: Record<string, string> = {}
  const set = (name: string, value: string | undefined): void => { if (value !== undefined) headers[name] = value }
  set('accept', rng.pick(ACCEPTS))
  if (cookies.length > 0) set('cookie', cookies.join(rng.pick(['; ', ';', ', '])))
  set('origin', rng.pick(ORIGINS))
  set('sec-fetch-site', rng.pick(FETCH_SITES))
  if (rng.chance(0.1)) set('host', rng.pick(['evil.example', 'app.test', 'app.test:444', '', nasty(rng, logins)]))
  if (rng.chance(0.1)) set('x-forwarded-host', 'evil.example')
  if (rng.chance(0.1)) set('x-forwarded-proto', rng.pick(['http', 'https', 'javascript']))
  if (rng.chance(0.05)) set('referer', `https://evil.example/${nasty(rng, logins)}`)
  if (rng.chance(0.02)) set('x-huge', 'h'.repeat(rng.int(10_000, 60_000)))
  const method = route === LOGOUT ? (rng.chance(0.9) ? 'POST' : 'GET') : (rng.chance(0.95) ? 'GET' : rng.pick(['POST', 'HEAD', 'PUT'] as const))
  const options: InjectOptions = { method, url: `${fuzzPath(rng, route)}${query === '' && rng.chance(0.5) ? '' : `?${query}`}`, headers }
  if (method === 'POST' || method === 'PUT') {
    set('content-type', rng.pick(CONTENT_TYPES))
    if (rng.chance(0.7)) options.payload = rng.chance(0.01) ? 'p'.repeat(1_100_000) : rng.pick(['', '{bad', 'a=b&a=c', '{"returnTo":"//evil.example"}', nasty(rng, logins)])
  }
  return { options, route }
}

interface Checker {
  problems: string[]
  check (generated: Generated, response: Awaited<ReturnType<FastifyInstance['inject']>>, allow5xx: boolean): void
}

function checker (h: Harness): Checker {
  const authorize = new URL('/ims/authorize/v2', h.ims.origin)
  const problems: string[] = []
  const report = (generated: Generated, what: string): void => {
    if (problems.length < 20) problems.push(`${what}: ${generated.options.method ?? 'GET'} ${String(generated.options.url).slice(0, 200)}`)
  }
  return {
    problems,
    check (generated, response, allow5xx) {
      if (response.statusCode >= 500 && !allow5xx) report(generated, `status ${response.statusCode} ${response.body.slice(0, 100)}`)
      const location = response.headers.location
      if (location !== undefined) {
        const target = new URL(String(location), APP_ORIGIN)
        const isLoginRedirect = generated.route === LOGIN && response.statusCode === 302
        if (isLoginRedirect) {
          // The one redirect that leaves: to the provider's authorize endpoint, with our own callback.
          if (`${target.origin}${target.pathname}` !== authorize.href) report(generated, `login redirected to ${target.origin}${target.pathname}`)
          if (target.searchParams.get('redirect_uri') !== `${APP_ORIGIN}${CALLBACK}`) report(generated, 'login changed redirect_uri')
          const state = target.searchParams.get('state') ?? ''
          const returnTo = Buffer.from(state.slice(state.indexOf('.') + 1), 'base64url').toString('utf8')
          if (new URL(returnTo, APP_ORIGIN).origin !== APP_ORIGIN || !returnTo.startsWith('/') || /^\/[/\\]/.test(returnTo)) report(generated, `state carries returnTo ${JSON.stringify(returnTo)}`)
        } else if (target.origin !== APP_ORIGIN || /^\s*[/\\]{2}/.test(String(location))) {
          report(generated, `Location ${JSON.stringify(location)} leaves ${APP_ORIGIN}`)
        }
      }
      // HTML answers only: Fastify's own 404 JSON quotes the URL, which is harmless as JSON.
      const html = String(response.headers['content-type'] ?? '').startsWith('text/html')
      if (html && /<script|onerror=|<h1>owned/i.test(response.body)) report(generated, 'markup reflected into an HTML answer')
    }
  }
}

async function genuineLogins (app: FastifyInstance, count: number): Promise<StartedLogin[]> {
  return await Promise.all(Array.from({ length: count }, async () => await startLogin(app)))
}

function trackUnhandledRejections (t: Test): unknown[] {
  const seen: unknown[] = []
  const listener = (reason: unknown): void => { seen.push(reason) }
  process.on('unhandledRejection', listener)
  t.teardown(() => { process.off('unhandledRejection', listener) })
  return seen
}

test('part A: 10,000 adversarial requests without a genuine state pair: no 5xx, no open redirect, no token call, nothing stored', async (t) => {
  const seed = testSeed(SEED)
  t.comment(`seed ${seed} (replay with LR_TEST_SEED=${seed})`)
  const rng = seededRng(seed)
  const h = await harness()
  t.teardown(h.close)
  const unhandled = trackUnhandledRejections(t)
  const logins = await genuineLogins(h.app, 40)
  const { problems, check } = checker(h)
  const statuses = new Map<number, number>()
  const injectErrors: string[] = []
  let sessionsMinted = 0

  for (let done = 0; done < ADVERSARIAL_REQUESTS; done += CONCURRENCY) {
    const batch = Array.from({ length: Math.min(CONCURRENCY, ADVERSARIAL_REQUESTS - done) }, () => adversarialRequest(rng, logins))
    await Promise.all(batch.map(async (generated) => {
      let response
      try {
        response = await h.app.inject(generated.options)
      } catch (error) {
        injectErrors.push(`${(error as Error).message}: ${String(generated.options.url).slice(0, 100)}`)
        return
      }
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
      check(generated, response, false)
      if (setCookies(response.headers).some((c) => c.name.endsWith('lr_session') && c.value !== '')) sessionsMinted++
    }))
    if (h.ims.count('token') !== 0) break
  }
  await new Promise((resolve) => setImmediate(resolve))

  t.comment(`statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`)
  t.equal([...statuses.values()].reduce((a, b) => a + b, 0) + injectErrors.length, ADVERSARIAL_REQUESTS, 'every request was sent')
  t.same(injectErrors, [], 'every request got an answer')
  t.same(problems, [], 'no 5xx, no Location off-origin, no reflected markup')
  t.same(unhandled, [], 'no unhandled rejection')
  t.equal(h.ims.count('token'), 0, 'IMS token endpoint never called')
  t.equal(sessionsMinted, 0, 'no session cookie was ever issued')
  t.same(await signInRecords(h.backend), [], 'no token or session record stored (logins leave only short-lived flow records)')
  t.ok((statuses.get(302) ?? 0) > 1000 && (statuses.get(400) ?? 0) > 1000 && (statuses.get(303) ?? 0) > 100 && (statuses.get(403) ?? 0) > 100,
    'the mix reached every route and outcome (login redirects, refused callbacks, logouts, refused cross-site logouts)')
})

type Variant = 'real code' | 'bogus code' | 'upstream failure' | 'no code' | 'empty code' | 'oversized code' | 'duplicated code' | 'provider error' | 'verifier mangled' | 'verifier missing'
const VARIANTS: readonly Variant[] = ['real code', 'real code', 'bogus code', 'bogus code', 'upstream failure', 'no code', 'empty code', 'oversized code', 'duplicated code', 'provider error', 'verifier mangled', 'verifier missing']

test('part B: 400 callbacks with a genuine state pair and everything else fuzzed: exactly the expected token calls, no stray 5xx, redirects stay home', async (t) => {
  const seed = testSeed(SEED)
  t.comment(`seed ${seed} (replay with LR_TEST_SEED=${seed})`)
  // Its own stream, so part B does not shift when part A's generator changes.
  const rng = seededRng(seed ^ 0x0B0B0B0B)
  const h = await harness()
  t.teardown(h.close)
  const unhandled = trackUnhandledRejections(t)
  const decoys = await genuineLogins(h.app, 10)
  const { problems, check } = checker(h)
  const wrongCalls: string[] = []
  const outcomes = new Map<string, number>()

  for (let i = 0; i < GENUINE_PAIR_REQUESTS; i++) {
    const variant = rng.pick(VARIANTS)
    const login = await startLogin(h.app, { returnTo: rng.pick(EVIL_RETURN_TO) })
    const params: Array<[string, string]> = [['state', login.state]]
    let verifier: string | undefined = login.verifier
    let expectedCalls = 0
    switch (variant) {
      case 'real code':
      case 'upstream failure': {
        const callback = await authorizeAs(h.browser(), login.authorizeUrl, h.ims.users[0]!.sub)
        params.push(['code', callback.searchParams.get('code')!])
        expectedCalls = 1
        if (variant === 'upstream failure') h.ims.fail('token', rng.pick(FAULTS))
        break
      }
      case 'bogus code': params.push(['code', encode(nasty(rng, decoys).slice(0, 4096)) || 'x']); expectedCalls = 1; break
      case 'no code': break
      case 'empty code': params.push(['code', '']); break
      case 'oversized code': params.push(['code', 'c'.repeat(rng.int(4097, 100_000))]); break
      case 'duplicated code': params.push(['code', 'one'], ['code', 'two']); break
      case 'provider error': params.push(['code', 'x'], ['error', rng.pick(['access_denied', 'server_error', nasty(rng, decoys)])]); break
      case 'verifier mangled': params.push(['code', 'x']); verifier = `${login.verifier.slice(0, 10)}!${login.verifier.slice(11)}`; break
      case 'verifier missing': params.push(['code', 'x']); verifier = undefined; break
    }
    // Fuzz around the genuine pair: extra parameters, extra cookies, any Accept.
    for (let extra = rng.int(0, 3); extra > 0; extra--) params.push([rng.pick(['returnTo', 'session_state', 'iss', 'x']), encode(nasty(rng, decoys))])
    const order = rng.chance(0.5) ? params : [...params].reverse()
    const cookies = [`${NAMES.state}=${login.state}`, ...(verifier === undefined ? [] : [`${NAMES.verifier}=${verifier}`]), ...fuzzCookies(rng, decoys).filter((c) => !c.startsWith(NAMES.state) && !c.startsWith(NAMES.verifier))]
    const accept = rng.pick(ACCEPTS)
    const generated: Generated = {
      route: CALLBACK,
      options: { url: `${CALLBACK}?${order.map(([n, v]) => `${n}=${v}`).join('&')}`, headers: { cookie: cookies.join('; '), ...(accept === undefined ? {} : { accept }) } }
    }
    const before = h.ims.count('token')
    const response = await h.app.inject(generated.options)
    h.ims.clearFaults()
    const calls = h.ims.count('token') - before
    if (calls !== expectedCalls) wrongCalls.push(`${variant}: ${calls} token calls, expected ${expectedCalls}`)
    check(generated, response, variant === 'upstream failure')
    if (variant === 'upstream failure' && response.statusCode !== 502) problems.push(`upstream failure answered ${response.statusCode}`)
    if ((response.statusCode === 303) !== (variant === 'real code')) problems.push(`${variant} answered ${response.statusCode}`)
    outcomes.set(`${variant} → ${response.statusCode}`, (outcomes.get(`${variant} → ${response.statusCode}`) ?? 0) + 1)
  }
  await new Promise((resolve) => setImmediate(resolve))

  t.comment(JSON.stringify(Object.fromEntries([...outcomes].sort())))
  t.same(wrongCalls, [], 'a token call exactly when state, verifier and a single code were all in order')
  t.same(problems, [], 'sign-in only with a real code; 5xx only for upstream failures; every redirect stays on the app')
  t.same(unhandled, [], 'no unhandled rejection')
})
