/**
 * Client authentication for the token and revoke endpoints. IMS takes the
 * credentials as HTTP Basic, as form fields, or (Adobe's own samples) as query
 * parameters. Several may be sent at once as long as they agree; credentials
 * that contradict each other are refused rather than one silently winning.
 */
import { timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { ImsContext, ImsRequest } from './context.js'
import { repeatedParam, sendOAuthError } from '../shared/http.js'
import type { MockImsClient } from './types.js'

export type ClientAuth =
  | { ok: true, client: MockImsClient }
  | { ok: false, description: string, basic: boolean }

/**
 * What the token and revoke endpoints check first: a form body, no parameter
 * repeated, and the client's credentials. Undefined when the error is sent.
 */
export function authenticatedForm (ctx: ImsContext, request: ImsRequest): { form: URLSearchParams, client: MockImsClient } | undefined {
  const { res, form } = request
  const refuse = (...args: [status: number, error: string, description: string, headers?: Record<string, string>]): undefined => {
    sendOAuthError(res, ...args)
    return undefined
  }
  if (!form) return refuse(400, 'invalid_request', 'the body must be application/x-www-form-urlencoded')
  const repeated = repeatedParam(form)
  if (repeated !== undefined) return refuse(400, 'invalid_request', `${repeated} is repeated`)
  const auth = authenticateClient(ctx.settings.clients, request.req.headers, form, request.query)
  // RFC 6749 §5.2: a failed Basic attempt is answered with a Basic challenge.
  if (!auth.ok) return refuse(401, 'invalid_client', auth.description, auth.basic ? { 'WWW-Authenticate': 'Basic realm="ims"' } : {})
  return { form, client: auth.client }
}

interface Offered {
  id: string | undefined
  secret: string | undefined
}

export function authenticateClient (
  clients: MockImsClient[],
  headers: IncomingHttpHeaders,
  form: URLSearchParams,
  query: URLSearchParams
): ClientAuth {
  const offered: Offered[] = [fromParams(form), fromParams(query)]
  const header = headers.authorization
  const basic = header !== undefined && /^basic\s/i.test(header)
  if (basic) {
    const decoded = decodeBasic(header.slice(6).trim())
    if (!decoded) return { ok: false, description: 'malformed Basic credentials', basic }
    offered.push(decoded)
  }

  const ids = distinct(offered.map((entry) => entry.id))
  const secrets = distinct(offered.map((entry) => entry.secret))
  if (ids.length > 1 || secrets.length > 1) return { ok: false, description: 'conflicting client credentials', basic }
  const [id] = ids
  const [secret] = secrets
  if (id === undefined || secret === undefined) return { ok: false, description: 'client authentication required', basic }

  const client = clients.find((candidate) => candidate.clientId === id)
  if (!client || !sameSecret(client.clientSecret, secret)) return { ok: false, description: 'invalid client_id or client_secret', basic }
  return { ok: true, client }
}

function fromParams (params: URLSearchParams): Offered {
  return { id: params.get('client_id') ?? undefined, secret: params.get('client_secret') ?? undefined }
}

/** RFC 6749 §2.3.1: id and secret are form-encoded before being joined and base64-encoded. */
function decodeBasic (encoded: string): Offered | undefined {
  const text = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon === -1) return undefined
  try {
    const decode = (part: string): string => decodeURIComponent(part.replace(/\+/g, ' '))
    return { id: decode(text.slice(0, colon)), secret: decode(text.slice(colon + 1)) }
  } catch {
    return undefined
  }
}

function distinct (values: Array<string | undefined>): string[] {
  return [...new Set(values.filter((value): value is string => value !== undefined))]
}

function sameSecret (expected: string, given: string): boolean {
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}
