import type { FastifyRequest } from 'fastify'

/**
 * Fastify logs every request's URL. The callback's URL carries the authorization code and state,
 * which are credentials until used: the auth routes log their requests with the query redacted.
 */
export function redactedRequestSerializer (request: FastifyRequest): Record<string, unknown> {
  const url = request.url ?? ''
  const queryStart = url.indexOf('?')
  return {
    method: request.method,
    url: queryStart === -1 ? url : `${url.slice(0, queryStart)}?[redacted]`,
    host: request.host,
    remoteAddress: request.ip
  }
}
