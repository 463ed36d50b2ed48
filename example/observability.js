// Production observability from the plugin's diagnostics_channel tracing channels: OpenTelemetry
// spans (through @opentelemetry/api, whatever SDK and exporter the app runs) and Prometheus-style
// counters, without touching the plugin. Subscribe once at start-up:
//
//   import { trace } from '@opentelemetry/api'
//   const { metrics } = instrument({ tracer: trace.getTracer('my-app') })
//   app.get('/metrics', async (request, reply) => reply.type('text/plain; version=0.0.4').send(metrics.text()))
import { tracingChannel } from 'node:diagnostics_channel'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { diagnosticsChannels } from 'fastify-lightroom-ims'

/** Counters in Prometheus's text format; enough for a scrape endpoint, no client library needed. */
export class Counters {
  #values = new Map()

  inc (name, labels = {}) {
    const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, '_')}"`).join(',')}}`
    this.#values.set(key, (this.#values.get(key) ?? 0) + 1)
  }

  get (name, labels = {}) {
    const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`
    return this.#values.get(key) ?? 0
  }

  text () {
    const names = new Set([...this.#values.keys()].map((key) => key.slice(0, key.indexOf('{'))))
    const lines = []
    for (const name of names) {
      lines.push(`# TYPE ${name} counter`)
      for (const [key, value] of this.#values) if (key.startsWith(`${name}{`)) lines.push(`${key.replace('{}', '')} ${value}`)
    }
    return `${lines.join('\n')}\n`
  }
}

// What each channel becomes: a span name, its attributes from the context (ids and names only:
// the plugin never puts a token in a context), and the counter it feeds.
const SPANS = {
  signIn: { span: 'lightroom-ims sign-in', kind: SpanKind.INTERNAL, attributes: (c) => ({ 'enduser.id': c.userId, 'http.response.status_code': c.statusCode }), counter: 'lightroom_ims_sign_ins_total', ok: (c) => c.statusCode === 303 },
  refresh: { span: 'lightroom-ims refresh', kind: SpanKind.INTERNAL, attributes: (c) => ({ 'enduser.id': c.userId, 'lightroom_ims.refresh.reason': c.reason }), counter: 'lightroom_ims_refreshes_total' },
  imsRequest: { span: 'lightroom-ims IMS request', kind: SpanKind.CLIENT, attributes: (c) => ({ 'lightroom_ims.ims.endpoint': c.endpoint, 'lightroom_ims.ims.grant_type': c.grantType }), counter: 'lightroom_ims_ims_requests_total' },
  lightroomRequest: { span: 'lightroom-ims Lightroom request', kind: SpanKind.CLIENT, attributes: (c) => ({ 'http.request.method': c.method, 'url.path': c.path }), counter: 'lightroom_ims_lightroom_requests_total' },
  store: { span: 'lightroom-ims store', kind: SpanKind.CLIENT, attributes: (c) => ({ 'db.operation.name': c.operation, 'lightroom_ims.store.key_prefix': c.keyPrefix }), counter: 'lightroom_ims_store_operations_total' }
}

/** Subscribes to every channel; returns the counters and an `unsubscribe()` (tests, hot reload). */
export function instrument ({ tracer, metrics = new Counters() }) {
  const subscriptions = []
  for (const [key, spec] of Object.entries(SPANS)) {
    const channel = tracingChannel(diagnosticsChannels[key])
    const spans = new WeakMap()
    const handlers = {
      start (context) {
        spans.set(context, tracer.startSpan(spec.span, { kind: spec.kind }))
      },
      error (context) {
        spans.get(context)?.recordException({ name: context.error?.name ?? 'Error', message: context.error?.code ?? 'failed' })
      },
      asyncEnd (context) {
        const span = spans.get(context)
        if (span === undefined) return
        spans.delete(context)
        const failed = context.error !== undefined || (spec.ok !== undefined && !spec.ok(context))
        for (const [name, value] of Object.entries(spec.attributes(context))) if (value !== undefined) span.setAttribute(name, value)
        span.setStatus({ code: failed ? SpanStatusCode.ERROR : SpanStatusCode.OK })
        span.end()
        metrics.inc(spec.counter, { result: failed ? 'error' : 'ok', ...(key === 'store' ? { operation: context.operation } : {}) })
      }
    }
    channel.subscribe(handlers)
    subscriptions.push(() => channel.unsubscribe(handlers))
  }
  return { metrics, unsubscribe: () => { for (const off of subscriptions) off() } }
}
