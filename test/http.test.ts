import { test } from 'tap'
import { closeSharedDispatcher, headerValue, sharedDispatcher, transientFailureKind } from '../lib/http/request.js'

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

test('transport failures worth retrying are named, the rest are not', async (t) => {
  const coded = (code: unknown): Error => Object.assign(new Error('x'), { code })
  t.equal(transientFailureKind(new DOMException('aborted', 'TimeoutError')), 'timeout')
  t.equal(transientFailureKind(coded('UND_ERR_CONNECT_TIMEOUT')), 'timeout')
  t.equal(transientFailureKind(coded('ETIMEDOUT')), 'timeout')
  t.equal(transientFailureKind(coded('ECONNRESET')), 'network')
  t.equal(transientFailureKind(coded('EAI_AGAIN')), 'network')
  t.equal(transientFailureKind(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')])), 'network', 'happy eyeballs')
  t.equal(transientFailureKind(new AggregateError([])), undefined)
  t.equal(transientFailureKind(coded('CERT_HAS_EXPIRED')), undefined, 'TLS will not fix itself in seconds')
  t.equal(transientFailureKind(coded(42)), undefined)
  t.equal(transientFailureKind(new TypeError('Invalid URL')), undefined)
  t.equal(transientFailureKind('ECONNRESET'), undefined)
  t.equal(transientFailureKind(null), undefined)
})
