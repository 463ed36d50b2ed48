import type { FastifyRequest } from 'fastify'

/**
 * Fastify logs every request's URL. The callback's URL carries the authorization code and state,
 * which are credentials until used: the auth routes log their requests with the query redacted.
 */
export function redactedRequestSerializer (request: FastifyRequest): Record<string, unknown> {
  const url = request.url ?? ''
  // An encoded "?" (%3F) is redacted too: a proxy that rewrote the path may have encoded the query.
  const match = /\?|%3f/i.exec(url)
  return {
    method: request.method,
    url: match === null ? url : `${url.slice(0, match.index)}?[redacted]`,
    host: request.host,
    remoteAddress: request.ip
  }
}
