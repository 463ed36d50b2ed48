// The mock IMS under stress: queued faults, counters, hostile requests, and
// closing while requests are still in flight.
import { test } from 'tap'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { createMockIms } from '../lib/testing/index.js'
import type { MockIms, MockImsOptions } from '../lib/testing/index.js'

const CALLBACK = 'https://app.example/cb'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const BASIC = { authorization: `Basic ${Buffer.from('test-client:test-secret').toString('base64')}` }

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

async function send (url: string, init: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string } = {}): Promise<Reply> {
  const res = await request(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

async function start (t: { teardown: (fn: () => unknown) => void }, options?: MockImsOptions): Promise<MockIms> {
  const ims = await createMockIms(options)
  t.teardown(() => ims.close())
  return ims
}

async function token (ims: MockIms, params: Record<string, string>): Promise<Reply> {
  return await send(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: { ...FORM, ...BASIC }, body: new URLSearchParams(params).toString() })
}

async function code (ims: MockIms, state = 's'): Promise<Reply> {
  const query = new URLSearchParams({ client_id: 'test-client', redirect_uri: CALLBACK, response_type: 'code', scope: 'openid,offline_access', state })
  return await send(`${ims.origin}/ims/authorize/v2?${query}`)
}

async function signIn (ims: MockIms): Promise<{ refresh_token: string, access_token: string }> {
  const back = new URL((await code(ims)).headers['location'] as string)
  const reply = await token(ims, { grant_type: 'authorization_code', code: back.searchParams.get('code') as string, redirect_uri: CALLBACK })
  return JSON.parse(reply.text)
}

test('a status fault answers that status for `times` requests, then normal service resumes', async (t) => {
  const ims = await start(t)
  ims.fail('discovery', { status: 500 }, 2)
  for (const attempt of [1, 2]) {
    const reply = await send(ims.discoveryUrl)
    t.equal(reply.status, 500, `attempt ${attempt}`)
    t.match(reply.headers['content-type'], /^text\/html/, 'a gateway-like HTML body by default')
    t.match(reply.text, /Error 500/)
    t.equal(reply.headers['retry-after'], undefined)
  }
  t.equal((await send(ims.discoveryUrl)).status, 200)
  t.equal(ims.count('discovery'), 3, 'faulted requests count')
})

test('503 with Retry-After, and a custom body', async (t) => {
  const ims = await start(t)
  const tokens = await signIn(ims)
  ims.fail('token', { status: 503, retryAfter: 2, body: '{"error":"temporarily_unavailable"}' })
  ims.fail('token', { status: 502, body: 'Bad gateway', contentType: 'text/plain' })
  const first = await token(ims, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
  t.equal(first.status, 503)
  t.equal(first.headers['retry-after'], '2')
  t.equal(first.headers['content-type'], 'application/json;charset=utf-8')
  t.same(JSON.parse(first.text), { error: 'temporarily_unavailable' })
  t.match(first.headers['x-debug-id'], /.+/)
  const second = await token(ims, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
  t.equal(second.status, 502, 'faults queue in order')
  t.equal(second.headers['content-type'], 'text/plain')
  t.equal(second.text, 'Bad gateway')
  t.equal((await token(ims, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status, 200,
    'a faulted refresh did not spend the refresh token')
  t.equal(ims.count('token:refresh_token'), 3)
  t.equal(ims.count('token:authorization_code'), 1)
  t.equal(ims.count('token'), 4)
})

test('delayMs answers normally, after the delay', async (t) => {
  const ims = await start(t)
  ims.fail('keys', { delayMs: 150 })
  const started = Date.now()
  const reply = await send(`${ims.origin}/ims/keys`)
  t.ok(Date.now() - started >= 140, 'waited')
  t.equal(reply.status, 200)
  t.match(JSON.parse(reply.text), { keys: [{ alg: 'RS256' }] })
})

test('a delayed request the client gave up on is still processed, unless dropIfClientGone', async (t) => {
  const ims = await start(t)
  const sub = ims.users[0]?.sub as string
  const abandon = async (refreshToken: string): Promise<void> => {
    const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString()
    await t.rejects(request(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: { ...FORM, ...BASIC }, body, signal: AbortSignal.timeout(30) }))
    await new Promise((resolve) => setTimeout(resolve, 120))
  }

  const first = (await signIn(ims)).refresh_token
  ims.fail('token', { delayMs: 80 })
  await abandon(first)
  t.notOk(ims.activeRefreshTokens(sub).includes(first), 'like a slow IMS: the refresh happened and rotated the token')
  t.equal(ims.activeRefreshTokens(sub).length, 1, 'its successor was issued to nobody')

  const second = (await signIn(ims)).refresh_token
  ims.fail('token', { delayMs: 80, dropIfClientGone: true })
  await abandon(second)
  t.ok(ims.activeRefreshTokens(sub).includes(second), 'dropped: the token is untouched')

  ims.fail('token', { delayMs: 10, dropIfClientGone: true })
  t.equal((await token(ims, { grant_type: 'refresh_token', refresh_token: second })).status, 200, 'a client that waits gets its answer')
})

test('reset destroys the socket without an answer', async (t) => {
  const ims = await start(t)
  const tokens = await signIn(ims)
  ims.fail('token', { reset: true })
  await t.rejects(token(ims, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }), { code: /^(UND_ERR_SOCKET|ECONNRESET)$/ })
  t.equal(ims.count('token:refresh_token'), 1, 'the reset request was counted')
  t.equal((await token(ims, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status, 200, 'and the token was not spent')
})

test('oauthError: JSON with 400 by default, 401 for invalid_client, or the given status', async (t) => {
  const ims = await start(t)
  const tokens = await signIn(ims)
  ims.fail('token', { oauthError: 'invalid_grant', description: 'consent revoked' })
  ims.fail('token', { oauthError: 'invalid_client' })
  ims.fail('revoke', { oauthError: 'temporarily_unavailable', status: 503 })
  ims.fail('userinfo', { oauthError: 'invalid_token', status: 401 })
  const refresh = async (): Promise<Reply> => await token(ims, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })

  const grant = await refresh()
  t.equal(grant.status, 400)
  t.same(JSON.parse(grant.text), { error: 'invalid_grant', error_description: 'consent revoked' })
  const client = await refresh()
  t.equal(client.status, 401)
  t.same(JSON.parse(client.text), { error: 'invalid_client' })
  const revoke = await send(`${ims.origin}/ims/revoke`, { method: 'POST', headers: { ...FORM, ...BASIC }, body: 'token=x' })
  t.equal(revoke.status, 503)
  const info = await send(`${ims.origin}/ims/userinfo/v2`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
  t.equal(info.status, 401)
  t.equal((await refresh()).status, 200)
})

test('oauthError on authorize goes back on the redirect, unless the client is unknown', async (t) => {
  const ims = await start(t)
  ims.fail('authorize', { oauthError: 'access_denied', description: 'user said no' })
  ims.fail('authorize', { oauthError: 'login_required' })
  ims.fail('authorize', { oauthError: 'access_denied' })
  const denied = new URL((await code(ims, 'st1')).headers['location'] as string)
  t.equal(denied.searchParams.get('error'), 'access_denied')
  t.equal(denied.searchParams.get('error_description'), 'user said no')
  t.equal(denied.searchParams.get('state'), 'st1')
  const login = new URL((await code(ims, 'st2')).headers['location'] as string)
  t.equal(login.searchParams.get('error'), 'login_required')
  t.notOk(login.searchParams.has('error_description'))
  t.equal((await send(`${ims.origin}/ims/authorize/v2?client_id=nobody`)).status, 400)
  t.equal(ims.count('authorize'), 3)
})

test('clearFaults and resetCounts', async (t) => {
  const ims = await start(t)
  ims.fail('discovery', { status: 500 }, 5)
  ims.clearFaults()
  t.equal((await send(ims.discoveryUrl)).status, 200)
  t.equal(ims.count('discovery'), 1)
  t.equal(ims.count('nothing'), 0)
  ims.resetCounts()
  t.equal(ims.count('discovery'), 0)
  await token(ims, { grant_type: 'client_credentials' })
  await token(ims, {})
  t.equal(ims.count('token:client_credentials'), 1, 'unknown grant types are counted too')
  t.equal(ims.count('token'), 2)
})

test('bad fault arguments throw', async (t) => {
  const ims = await start(t)
  t.throws(() => ims.fail('token', { status: 500 }, 0), /times/)
  t.throws(() => ims.fail('token', { status: 42 }), /status/)
  t.throws(() => ims.fail('token', { delayMs: -1 }), /delayMs/)
  t.equal((await send(ims.discoveryUrl)).status, 200)
})

test('close() finishes promptly with a delayed request pending', async (t) => {
  const ims = await createMockIms()
  ims.fail('discovery', { delayMs: 10_000 })
  const pending = send(ims.discoveryUrl)
  // Keep an idle keep-alive connection open too.
  await send(`${ims.origin}/ims/keys`)
  while (ims.count('discovery') === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const started = Date.now()
  await ims.close()
  t.ok(Date.now() - started < 1000, 'closed without waiting for the delay')
  await t.rejects(pending)
  await ims.close()
  t.pass('closing twice is fine')
  await t.rejects(send(ims.discoveryUrl), 'nothing listens any more')
})

test('close() cuts off a client still sending its body', async (t) => {
  const ims = await createMockIms()
  const { port } = new URL(ims.origin)
  const socket = connect(Number(port), '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('POST /ims/token/v3 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=')
  const closed = new Promise((resolve) => socket.once('close', resolve))
  while (ims.count('token') === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  await ims.close()
  await closed
  t.pass('the half-sent request did not hold close() up')
})

test('hostile requests get answers, and the server stays up', async (t) => {
  const ims = await start(t)
  const huge = 'a='.padEnd(70 * 1024, 'x')
  const tooLarge = await send(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: { ...FORM, ...BASIC }, body: huge })
  t.equal(tooLarge.status, 413)
  t.match(JSON.parse(tooLarge.text), { error: 'invalid_request' })

  // Chunked, so the size is only known while reading.
  const chunked = await request(`${ims.origin}/ims/revoke`, {
    method: 'POST',
    headers: { ...FORM, ...BASIC },
    body: Readable.from((function * () { for (let i = 0; i < 20; i++) yield Buffer.alloc(8 * 1024, 120) })())
  })
  t.equal(chunked.statusCode, 413)
  await chunked.body.text()

  // Beyond what is worth reading at all, the connection is cut.
  await t.rejects(send(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: FORM, body: 'x'.repeat(2 * 1024 * 1024) }))

  const garbage = await token(ims, { grant_type: 'authorization_code', code: '%%%\u0000' })
  t.equal(garbage.status, 400)
  const badBasic = await send(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: { ...FORM, authorization: 'Basic' }, body: 'grant_type=refresh_token' })
  t.equal(badBasic.status, 401)
  t.equal((await send(`${ims.origin}//evil.example/ims/keys`)).status, 404, 'a path starting with // is a path, not a host')
  t.equal((await send(`${ims.origin}/ims/keys?x=%zz`)).status, 200)
  t.equal((await send(ims.discoveryUrl)).status, 200)
})

test('a handler error becomes a 500, not a crash', async (t) => {
  const ims = await start(t, { now: () => { throw new Error('clock broke') } })
  const reply = await code(ims)
  t.equal(reply.status, 500)
  t.match(JSON.parse(reply.text), { error: 'server_error' })
  t.equal((await send(ims.discoveryUrl)).status, 200)
})

test('listening on a taken port rejects', async (t) => {
  const ims = await start(t)
  await t.rejects(createMockIms({ port: Number(new URL(ims.origin).port) }), { code: 'EADDRINUSE' })
})

test('an IPv6 host gets a bracketed origin', async (t) => {
  const ims = await createMockIms({ host: '::1' }).catch(() => undefined)
  if (!ims) return t.pass('no IPv6 loopback here')
  t.teardown(() => ims.close())
  t.match(ims.origin, /^http:\/\/\[::1\]:\d+$/)
  t.equal((await send(ims.discoveryUrl)).status, 200)
})
