import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CurrentUser } from '../auth/current-user.js'
import { errorBody, loginRequired } from '../errors.js'
import { wantsHtml } from './replies.js'

/** `app.lightroom.requireLogin`: a preHandler that lets signed-in requests through and turns the rest away. */
export function requireLoginHandler (currentUser: CurrentUser, loginPath: (returnTo?: string) => string) {
  return async function requireLogin (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (await currentUser.resolve(request) !== undefined) return
    const loginUrl = loginPath(request.url)
    // A browser navigating is sent to sign in and brought back; an API caller is told where to go.
    if (request.method === 'GET' && wantsHtml(request)) {
      await reply.header('cache-control', 'no-store').redirect(loginUrl, 302)
      return
    }
    await reply.code(401).send(errorBody(loginRequired(), { loginUrl }))
  }
}
