/**
 * What every endpoint handler gets: the mock's shared state, and one parsed
 * request. Bodies are read (and bounded) before a handler runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { EndpointPaths } from './discovery.js'
import type { MintContext } from './mint.js'
import type { MockImsUser } from './types.js'

export interface ImsContext extends MintContext {
  origin: string
  paths: EndpointPaths
  /** The user authorizations sign in unless login_hint names another. */
  currentUser (): MockImsUser
}

export interface ImsRequest {
  req: IncomingMessage
  res: ServerResponse
  method: string
  query: URLSearchParams
  /** The body's parameters; undefined unless it was a POST sent as a form. */
  form: URLSearchParams | undefined
}
