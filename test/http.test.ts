import { createServer } from 'node:http'
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import tap, { test } from 'tap'
import { Agent } from 'undici'
import { closeSharedDispatcher, get, getWithRetries, headerValue, sharedDispatcher } from '../lib/http/request.js'

type Tap = Parameters<Parameters<typeof test>[0]>[0]

const dispatcher = new Agent()
tap.teardown(async () => { await dispatcher.close() })

/** A server on 127.0.0.1 that answers call n (1-based) with `handler`; returns its URL and a call counter. */
async function server (t: Tap, handler: (res: ServerResponse, call: number) => void): Promise<{ url: string, calls: () => number }> {
  let calls = 0
  const srv = createServer((_req, res) => { handler(res, ++calls) })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    srv.closeAllConnections()
    await new Promise((resolve) => srv.close(resolve))
  })
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/x`, calls: () => calls }
}

function recorder (): { sleep: (ms: number) => Promise<void>, waits: number[] } {
  const waits: number[] = []
  return { sleep: async (ms) => { waits.push(ms) }, waits }
}

test('one shared dispatcher until closed, then a new one', async (t) => {
  await closeSharedDispatcher()
  const first = sharedDispatcher()
  t.equal(sharedDispatcher(), first)
  await closeSharedDispatcher()
  const second = sharedDispatcher()
  t.not(second, first)
  await closeSharedDispatcher()
  await closeSharedDispatcher()
})

test('headerValue takes the first of repeated headers', async (t) => {
  const res = { status: 200, text: '', headers: { 'x-debug-id': ['one', 'two'], 'retry-after': '3' } }
  t.equal(headerValue(res, 'x-debug-id'), 'one')
  t.equal(headerValue(res, 'retry-after'), '3')
  t.equal(headerValue(res, 'absent'), undefined)
})

test('getWithRetries: a 503 with Retry-After is waited out, then the 200 is resolved', async (t) => {
  const { url, calls } = await server(t, (res, call) => {
    if (call === 1) res.writeHead(503, { 'retry-after': '2' }).end('busy')
    else res.writeHead(200).end('fine')
  })
  const { sleep, waits } = recorder()
  const res = await getWithRetries(url, { timeoutMs: 2000, dispatcher }, { retries: 2, baseDelayMs: 100, maxDelayMs: 5000, sleep })
  t.match(res, { status: 200, text: 'fine' })
  t.equal(calls(), 2)
  t.same(waits, [2000])
})

test('getWithRetries: when 429/5xx persist, the last answer is resolved for the caller to judge', async (t) => {
  const { url, calls } = await server(t, (res, call) => { res.writeHead(call === 1 ? 429 : 502).end(`answer ${call}`) })
  const { sleep, waits } = recorder()
  const res = await getWithRetries(url, { timeoutMs: 2000, dispatcher }, { retries: 1, baseDelayMs: 100, maxDelayMs: 100, sleep })
  t.match(res, { status: 502, text: 'answer 2' })
  t.equal(calls(), 2)
  t.equal(waits.length, 1)
})

test('getWithRetries: other statuses are final at once', async (t) => {
  const { url, calls } = await server(t, (res) => { res.writeHead(404).end() })
  const { sleep, waits } = recorder()
  t.equal((await getWithRetries(url, { timeoutMs: 2000, dispatcher }, { retries: 3, baseDelayMs: 1, maxDelayMs: 1, sleep })).status, 404)
  t.equal(calls(), 1)
  t.same(waits, [])
})

test('getWithRetries: a reset is retried; a persistent one rejects with the transport error', async (t) => {
  const { url, calls } = await server(t, (res) => { res.socket?.destroy() })
  const { sleep, waits } = recorder()
  await t.rejects(getWithRetries(url, { timeoutMs: 2000, dispatcher }, { retries: 2, baseDelayMs: 1, maxDelayMs: 1, sleep }), { code: 'UND_ERR_SOCKET' })
  t.equal(calls(), 3)
  t.equal(waits.length, 2)
})

test('getWithRetries: a failure retrying cannot fix rejects at once', async (t) => {
  const { sleep, waits } = recorder()
  await t.rejects(getWithRetries('not a url', { timeoutMs: 2000, dispatcher }, { retries: 3, baseDelayMs: 1, maxDelayMs: 1, sleep }))
  t.same(waits, [])
})

test('the caller\'s signal aborts the call, and nothing is retried after it fired', async (t) => {
  const { url, calls } = await server(t, () => { /* never answers */ })
  const { sleep, waits } = recorder()
  const caller = new AbortController()
  setTimeout(() => { caller.abort(new DOMException('caller gave up', 'TimeoutError')) }, 100)
  const started = Date.now()
  await t.rejects(getWithRetries(url, { timeoutMs: 5000, dispatcher, signal: caller.signal }, { retries: 3, baseDelayMs: 1, maxDelayMs: 1, sleep }), { name: 'TimeoutError' })
  t.ok(Date.now() - started < 2000, 'well before timeoutMs')
  t.equal(calls(), 1)
  t.same(waits, [])
})

test('timeoutMs still bounds a call that also has a signal', async (t) => {
  const { url } = await server(t, () => { /* never answers */ })
  const started = Date.now()
  await t.rejects(get(url, { timeoutMs: 100, dispatcher, signal: new AbortController().signal }), { name: 'TimeoutError' })
  t.ok(Date.now() - started < 2000)
})
