import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { safeReturnTo } from './return-to.js'

/**
 * The OAuth `state` is `<32 random bytes>.<returnTo, base64url>`. The whole value is also kept in a
 * cookie and the callback accepts only an exact match, so the returnTo inside cannot be altered on
 * its way through IMS; it is still validated again on the way out.
 */
export function createState (returnTo: string): string {
  return `${randomBytes(32).toString('base64url')}.${Buffer.from(returnTo).toString('base64url')}`
}

export function statesMatch (fromQuery: unknown, fromCookie: string | undefined): boolean {
  if (typeof fromQuery !== 'string' || fromCookie === undefined || fromQuery.length === 0) return false
  const a = Buffer.from(fromQuery)
  const b = Buffer.from(fromCookie)
  return a.length === b.length && timingSafeEqual(a, b)
}

export function returnToFromState (state: string, fallback: string): string {
  const encoded = state.slice(state.indexOf('.') + 1)
  return safeReturnTo(Buffer.from(encoded, 'base64url').toString('utf8')) ?? fallback
}

export function requestedReturnTo (request: FastifyRequest, fallback: string): string {
  const query = request.query as Record<string, unknown> | undefined
  return safeReturnTo(query?.returnTo) ?? fallback
}
