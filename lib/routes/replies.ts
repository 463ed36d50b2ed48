import type { FastifyReply, FastifyRequest } from 'fastify'
import { errorBody, type LightroomAuthError } from '../errors.js'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!)
}

export function wantsHtml (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  return typeof accept === 'string' && accept.includes('text/html')
}

/**
 * Answers a failed sign-in step: a small HTML page for a browser (it arrived here by a redirect and
 * has nowhere else to show the problem), the usual Fastify JSON error shape for everyone else. Only
 * our own messages are shown: query parameters (error_description and the like) are attacker-chosen.
 */
export function sendAuthError (request: FastifyRequest, reply: FastifyReply, error: LightroomAuthError, loginUrl: string): FastifyReply {
  // The page's URL may carry a code or state: no Referer may take it to whatever the page links to.
  reply.code(error.statusCode).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer')
  if (wantsHtml(request)) {
    const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in problem</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1>Sign-in did not complete</h1><p id="message">${escapeHtml(error.message)}</p>
<p><a href="${escapeHtml(loginUrl)}">Try signing in again</a></p><p><small>Error code: ${escapeHtml(error.code)}</small></p>
</body></html>`
    return reply.type('text/html; charset=utf-8').send(page)
  }
  return reply.send(errorBody(error))
}
