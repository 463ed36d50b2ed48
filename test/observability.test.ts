import { test } from 'tap'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { Tracer } from '@opentelemetry/api'
import { signedInWithLightroom } from './helpers/lightroom-harness.js'
import { signIn } from './helpers/setup.js'

const HOUR = 3_600_000

/** example/observability.js, which is JavaScript: the part of its shape this test uses. */
interface ObservabilityExample {
  instrument: (options: { tracer: Tracer }) => { metrics: { get: (name: string, labels?: Record<string, string>) => number, text: () => string }, unsubscribe: () => void }
}

test('the example turns the diagnostics channels into OpenTelemetry spans and Prometheus counters', async (t) => {
  const { instrument } = await t.mockImport<ObservabilityExample>('../example/observability.js', { 'fastify-lightroom-ims': await import('../index.js') })
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const { metrics, unsubscribe } = instrument({ tracer: provider.getTracer('test') })
  t.teardown(unsubscribe)
  const { h, clock, browser } = await signedInWithLightroom(t)
  clock.advance(25 * HOUR)
  t.equal((await browser.get('/token')).status, 200, 'the expired token was refreshed')
  t.equal((await browser.get('/account')).status, 200, 'a Lightroom call')

  const spans = exporter.getFinishedSpans()
  const named = (name: string) => spans.filter((span) => span.name === name)
  const sub = h.ims.users[0]!.sub
  const [signInSpan] = named('lightroom-ims sign-in')
  t.ok(signInSpan, 'a span for the sign-in')
  t.match(signInSpan?.attributes, { 'enduser.id': sub, 'http.response.status_code': 303 })
  t.equal(signInSpan?.status.code, 1, 'status OK')
  const [refreshSpan] = named('lightroom-ims refresh')
  t.ok(refreshSpan, 'a span for the refresh')
  t.match(refreshSpan?.attributes, { 'enduser.id': sub, 'lightroom_ims.refresh.reason': 'expiring' })
  const grants = named('lightroom-ims IMS request').map((span) => span.attributes['lightroom_ims.ims.grant_type'])
  t.same(grants.sort(), ['authorization_code', 'refresh_token'], 'one IMS span for the code exchange, one for the refresh')
  t.ok(named('lightroom-ims store').length >= 3, 'store calls are spans too')
  t.match(named('lightroom-ims Lightroom request')[0]?.attributes, { 'http.request.method': 'GET', 'url.path': '/v2/account' }, 'a span for the Lightroom call')
  t.notMatch(JSON.stringify(spans.map((span) => span.attributes)), new RegExp(h.secrets().filter((s) => s.length > 8).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')), 'no token, code or secret in any attribute')

  t.equal(metrics.get('lightroom_ims_sign_ins_total', { result: 'ok' }), 1)
  t.equal(metrics.get('lightroom_ims_refreshes_total', { result: 'ok' }), 1)
  t.match(metrics.text(), /# TYPE lightroom_ims_refreshes_total counter\nlightroom_ims_refreshes_total\{result="ok"\} 1/)

  // A refused sign-in is an error span and counts as one.
  h.ims.fail('token', { status: 400, oauthError: 'invalid_grant' }, 1)
  await signIn(h.browser())
  t.equal(metrics.get('lightroom_ims_sign_ins_total', { result: 'error' }), 1)
  t.equal(exporter.getFinishedSpans().filter((span) => span.name === 'lightroom-ims sign-in' && span.status.code === 2).length, 1, 'the failed sign-in span has status ERROR')
})
