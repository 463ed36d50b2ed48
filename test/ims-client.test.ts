import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { inspect } from 'node:util'
import tap, { test } from 'tap'
import { Agent } from 'undici'
import { ImsError } from '../lib/errors.js'
import { closeSharedDispatcher } from '../lib/http/request.js'
import { ImsClient } from '../lib/ims/client.js'
import type { ImsClientOptions } from '../lib/ims/client.js'

/** tap's per-test object, with its plugins. */
type Tap = Parameters<Parameters<typeof test>[0]>[0]

const CLIENT_SECRET = 'p8e-CLIENT-SECRET'
const REFRESH_TOKEN = 'eyJ.REFRESH-TOKEN.sig'
const ACCESS_TOKEN = 'eyJ.ACCESS-TOKEN.sig'
const CODE = 'eyJ.AUTH-CODE.sig'
const VERIFIER = 'pkce-VERIFIER-0123456789'
const SECRETS = [CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, CODE, VERIFIER]

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  form: URLSearchParams
}

type Handler = (res: ServerResponse, call: number, req: IncomingMessage) => void

/** A throwaway server on 127.0.0.1 that records every request and answers with `handler`. */
async function imsServer (t: Tap, handler: Handler): Promise<{ base: string, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, form: new URLSearchParams(body) })
      handler(res, seen.length, req)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { base: `http://127.0.0.1:${port}`, seen }
}

function json (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function client (base: string, extra: Partial<ImsClientOptions> = {}): { ims: ImsClient, delays: number[] } {
  const delays: number[] = []
  const ims = new ImsClient({
    tokenEndpoint: `${base}/ims/token/v3`,
    revocationEndpoint: `${base}/ims/revoke`,
    userinfoEndpoint: `${base}/ims/userinfo/v2`,
    clientId: 'my-client-id',
    clientSecret: CLIENT_SECRET,
    sleep: async (ms) => { delays.push(ms) },
    ...extra
  })
  return { ims, delays }
}

/** Awaits a rejection and checks it is an ImsError that leaks nothing we sent. */
async function imsFailure (t: Tap, promise: Promise<unknown>): Promise<ImsError> {
  const err = await promise.then(() => undefined, (error: unknown) => error)
  t.type(err, ImsError)
  const text = `${(err as Error).message}\n${inspect(err, { depth: 5 })}`
  for (const secret of SECRETS) t.notOk(text.includes(secret), 'no secret in the error')
  return err as ImsError
}

const TOKENS = { access_token: ACCESS_TOKEN, refresh_token: 'new-refresh', token_type: 'bearer', expires_in: 86399 }

tap.teardown(closeSharedDispatcher)

test('refresh: posts the grant with client auth in the form body and returns the JSON', async (t) => {
  const { base, seen } = await imsServer(t, (res) => json(res, 200, TOKENS))
  const { ims } = client(base)
  t.same(await ims.refresh(REFRESH_TOKEN, { scope: 'openid,AdobeID' }), TOKENS)
  t.equal(seen.length, 1)
  const [req] = seen
  t.equal(req?.method, 'POST')
  t.equal(req?.url, '/ims/token/v3', 'nothing in the query string')
  t.equal(req?.headers['content-type'], 'application/x-www-form-urlencoded')
  t.equal(req?.headers.accept, 'application/json')
  t.notOk(req?.headers.authorization, 'no Basic auth')
  t.same(Object.fromEntries(req?.form ?? []), {
    grant_type: 'refresh_token',
    refresh_token: REFRESH_TOKEN,
    scope: 'openid,AdobeID',
    client_id: 'my-client-id',
    client_secret: CLIENT_SECRET
  })
})

test('refresh: a 500 then a 200 is retried once and succeeds', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => call === 1 ? json(res, 500, { error: 'server_error' }) : json(res, 200, TOKENS))
  const { ims, delays } = client(base)
  t.same(await ims.refresh(REFRESH_TOKEN), TOKENS)
  t.equal(seen.length, 2)
  t.equal(delays.length, 1)
  t.ok(delays[0]! >= 250 && delays[0]! <= 500, `first backoff is 500 ms with equal jitter (${delays[0]})`)
  t.notOk(seen[1]?.form.has('scope'), 'no scope unless asked for')
})

test('refresh: a 503 with Retry-After: 1 waits one second', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => call === 1
    ? json(res, 503, {}, { 'retry-after': '1' })
    : json(res, 200, TOKENS))
  const { ims, delays } = client(base)
  await ims.refresh(REFRESH_TOKEN)
  t.equal(seen.length, 2)
  t.same(delays, [1000])
})

test('refresh: Retry-After is capped at maxRetryDelayMs', async (t) => {
  const { base } = await imsServer(t, (res, call) => call === 1
    ? json(res, 429, {}, { 'retry-after': '3600' })
    : json(res, 200, TOKENS))
  const { ims, delays } = client(base, { maxRetryDelayMs: 2000 })
  await ims.refresh(REFRESH_TOKEN)
  t.same(delays, [2000])
})

test('refresh: retries exhausted throw the last error after retries + 1 calls, backing off', async (t) => {
  const statuses = [500, 502, 503, 504]
  const { base, seen } = await imsServer(t, (res, call) => {
    res.writeHead(statuses[call - 1] ?? 500, { 'x-debug-id': `debug-${call}` })
    res.end('<html>upstream trouble</html>')
  })
  const { ims, delays } = client(base, { retries: 3, retryBaseDelayMs: 100, maxRetryDelayMs: 300 })
  const err = await imsFailure(t, ims.refresh(REFRESH_TOKEN))
  t.equal(seen.length, 4)
  t.match(err, { error: 'http', status: 504, debugId: 'debug-4', transient: true })
  t.equal(delays.length, 3)
  t.ok(delays[0]! >= 50 && delays[0]! <= 100, `step 1 (${delays[0]})`)
  t.ok(delays[1]! >= 100 && delays[1]! <= 200, `step 2 (${delays[1]})`)
  t.ok(delays[2]! >= 150 && delays[2]! <= 300, `step 3 is capped (${delays[2]})`)
})

test('refresh: a response slower than timeoutMs is a transient timeout', async (t) => {
  const { base, seen } = await imsServer(t, () => { /* never answers */ })
  const { ims } = client(base, { timeoutMs: 100, retries: 0 })
  const started = Date.now()
  const err = await imsFailure(t, ims.refresh(REFRESH_TOKEN))
  t.match(err, { error: 'timeout', status: undefined, transient: true })
  t.ok(Date.now() - started < 1000, 'gave up quickly')
  t.equal(seen.length, 1)
})

test('refresh: a body that stalls halfway is a transient timeout too', async (t) => {
  const { base } = await imsServer(t, (res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"access_token":')
  })
  const { ims } = client(base, { timeoutMs: 100, retries: 0 })
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'timeout', transient: true })
})

test('refresh: a timeout is retried like any transient failure', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => { if (call > 1) json(res, 200, TOKENS) })
  const { ims, delays } = client(base, { timeoutMs: 100 })
  t.same(await ims.refresh(REFRESH_TOKEN), TOKENS)
  t.equal(seen.length, 2)
  t.equal(delays.length, 1)
})

test('refresh: a socket destroyed mid-request is a transient network failure', async (t) => {
  const { base } = await imsServer(t, (res) => { res.socket?.destroy() })
  const { ims } = client(base, { retries: 0 })
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'network', transient: true })
})

test('refresh: a refused connection is a transient network failure', async (t) => {
  // A port that was just free and has nobody listening.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  const { ims, delays } = client(`http://127.0.0.1:${port}`, { retries: 1 })
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'network', transient: true })
  t.equal(delays.length, 1, 'retried once')
})

test('refresh: invalid_grant is not retried; error, status and debug id are kept', async (t) => {
  const { base, seen } = await imsServer(t, (res) => json(res, 400, {
    error: 'invalid_grant',
    error_description: `refresh token ${REFRESH_TOKEN} has expired`
  }, { 'x-debug-id': 'abc-123' }))
  const { ims, delays } = client(base)
  const err = await imsFailure(t, ims.refresh(REFRESH_TOKEN))
  t.match(err, { error: 'invalid_grant', status: 400, debugId: 'abc-123', transient: false, retryAfterSeconds: undefined })
  t.match(err.message, /invalid_grant \(refresh token \[redacted\] has expired\)/, 'the description is echoed, the token blanked')
  t.equal(seen.length, 1)
  t.same(delays, [])
  t.equal(err.cause, undefined)
})

test('refresh: an OAuth error after a transient failure points at it (the grant may have been used)', async (t) => {
  const { base } = await imsServer(t, (res, call) => {
    if (call === 1) res.socket?.destroy()
    else json(res, 400, { error: 'invalid_grant' })
  })
  const { ims } = client(base)
  const err = await imsFailure(t, ims.refresh(REFRESH_TOKEN))
  t.equal(err.error, 'invalid_grant')
  t.match(err.cause, { error: 'network', transient: true })
})

test('refresh: long server texts are cut short', async (t) => {
  const { base } = await imsServer(t, (res) => json(res, 401, { error: 'invalid_client', error_description: 'x'.repeat(5000) }))
  const { ims } = client(base)
  const err = await imsFailure(t, ims.refresh(REFRESH_TOKEN))
  t.equal(err.error, 'invalid_client')
  t.ok(err.message.length < 300)
})

test('refresh: other 4xx and 3xx are final, with error "http" when the body names none', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => {
    if (call === 1) json(res, 404, [], { 'retry-after': '5' })
    else { res.writeHead(302, { location: '/elsewhere' }); res.end() }
  })
  const { ims } = client(base)
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'http', status: 404, transient: false, retryAfterSeconds: 5 })
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'http', status: 302, transient: false })
  t.equal(seen.length, 2)
})

test('refresh: 429 with an empty body and 408 are transient', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => {
    res.writeHead(call === 1 ? 429 : 408)
    res.end()
  })
  const { ims } = client(base, { retries: 1 })
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'http', status: 408, transient: true })
  t.equal(seen.length, 2)
})

test('refresh: a 200 that is not a JSON object is a final invalid_response', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => {
    res.writeHead(200, { 'x-debug-id': 'dbg' })
    res.end(call === 1 ? '<html>maintenance</html>' : '"just a string"')
  })
  const { ims } = client(base)
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'invalid_response', status: 200, debugId: 'dbg', transient: false })
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'invalid_response' })
  t.equal(seen.length, 2, 'neither was retried')
})

test('refresh: a malformed endpoint is a final failure, not retried', async (t) => {
  const { ims, delays } = client('http://127.0.0.1:1', { tokenEndpoint: 'not a url' })
  t.match(await imsFailure(t, ims.refresh(REFRESH_TOKEN)), { error: 'network', transient: false })
  t.same(delays, [])
})

test('refresh: without an injected sleep it really waits, briefly', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => call === 1 ? json(res, 503, {}) : json(res, 200, TOKENS))
  const agent = new Agent()
  t.teardown(async () => { await agent.close() })
  const { ims } = client(base, { sleep: undefined, retryBaseDelayMs: 10, dispatcher: agent })
  t.same(await ims.refresh(REFRESH_TOKEN), TOKENS)
  t.equal(seen.length, 2)
})

test('exchangeCode: sends code, redirect_uri, verifier and client auth; never retries', async (t) => {
  const { base, seen } = await imsServer(t, (res, call) => call === 1 ? json(res, 200, TOKENS) : json(res, 503, { error: 'temporarily_unavailable' }))
  const { ims, delays } = client(base)
  t.same(await ims.exchangeCode(CODE, 'https://app.example/cb', VERIFIER), TOKENS)
  t.same(Object.fromEntries(seen[0]?.form ?? []), {
    grant_type: 'authorization_code',
    code: CODE,
    redirect_uri: 'https://app.example/cb',
    code_verifier: VERIFIER,
    client_id: 'my-client-id',
    client_secret: CLIENT_SECRET
  })
  t.equal(seen[0]?.url, '/ims/token/v3')

  const err = await imsFailure(t, ims.exchangeCode(CODE, 'https://app.example/cb', undefined))
  t.match(err, { error: 'temporarily_unavailable', status: 503, transient: true })
  t.equal(seen.length, 2, 'a transient failure is still not retried: the code is single-use')
  t.same(delays, [])
  t.notOk(seen[1]?.form.has('code_verifier'), 'no verifier field without PKCE')
})

test('exchangeCode: an error description echoing the code or verifier is blanked', async (t) => {
  const { base } = await imsServer(t, (res) => json(res, 400, { error: 'invalid_grant', error_description: `code ${CODE} with ${VERIFIER}` }))
  const { ims } = client(base)
  const err = await imsFailure(t, ims.exchangeCode(CODE, 'https://app.example/cb', VERIFIER))
  t.match(err.message, /code \[redacted\] with \[redacted\]/)
})

test('revoke: posts token, hint and client auth; 200 with an empty body resolves', async (t) => {
  const { base, seen } = await imsServer(t, (res) => { res.writeHead(200); res.end() })
  const { ims } = client(base)
  await ims.revoke(REFRESH_TOKEN, 'refresh_token')
  await ims.revoke(ACCESS_TOKEN)
  t.equal(seen[0]?.url, '/ims/revoke')
  t.same(Object.fromEntries(seen[0]?.form ?? []), {
    token: REFRESH_TOKEN,
    token_type_hint: 'refresh_token',
    client_id: 'my-client-id',
    client_secret: CLIENT_SECRET
  })
  t.notOk(seen[1]?.form.has('token_type_hint'))
})

test('revoke: retried once at most, then the error is thrown', async (t) => {
  const { base, seen } = await imsServer(t, (res) => json(res, 500, { error: 'server_error' }))
  const { ims, delays } = client(base, { retries: 5 })
  t.match(await imsFailure(t, ims.revoke(REFRESH_TOKEN, 'refresh_token')), { error: 'server_error', status: 500, transient: true })
  t.equal(seen.length, 2)
  t.equal(delays.length, 1)
})

test('revoke and userinfo: retries: 0 means no second chance either', async (t) => {
  const { base, seen } = await imsServer(t, (res) => json(res, 503, {}))
  const { ims, delays } = client(base, { retries: 0 })
  t.match(await imsFailure(t, ims.revoke(REFRESH_TOKEN)), { status: 503, transient: true })
  t.match(await imsFailure(t, ims.userinfo(ACCESS_TOKEN)), { status: 503, transient: true })
  t.equal(seen.length, 2)
  t.same(delays, [])
})

test('revoke: a client error is thrown at once', async (t) => {
  const { base, seen } = await imsServer(t, (res) => json(res, 401, { error: 'invalid_client' }))
  const { ims } = client(base)
  t.match(await imsFailure(t, ims.revoke(REFRESH_TOKEN)), { error: 'invalid_client', transient: false })
  t.equal(seen.length, 1)
})

test('userinfo: GET with the bearer token, returns the JSON', async (t) => {
  const { base, seen } = await imsServer(t, (res) => json(res, 200, { sub: 'user-1@AdobeID' }))
  const { ims } = client(base)
  t.same(await ims.userinfo(ACCESS_TOKEN), { sub: 'user-1@AdobeID' })
  t.equal(seen[0]?.method, 'GET')
  t.equal(seen[0]?.url, '/ims/userinfo/v2')
  t.equal(seen[0]?.headers.authorization, `Bearer ${ACCESS_TOKEN}`)
})

test('userinfo: a 401 is an ImsError without the token', async (t) => {
  const { base } = await imsServer(t, (res) => json(res, 401, { error: 'invalid_token', error_description: `token ${ACCESS_TOKEN} expired` }))
  const { ims } = client(base)
  t.match(await imsFailure(t, ims.userinfo(ACCESS_TOKEN)), { error: 'invalid_token', status: 401 })
})

test('revoke and userinfo without a configured endpoint fail clearly', async (t) => {
  const ims = new ImsClient({ tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'c', clientSecret: CLIENT_SECRET })
  t.match(await imsFailure(t, ims.revoke(REFRESH_TOKEN)), { error: 'not_supported', transient: false, message: /revocationEndpoint/ })
  t.match(await imsFailure(t, ims.userinfo(ACCESS_TOKEN)), { error: 'not_supported', message: /userinfoEndpoint/ })
})
