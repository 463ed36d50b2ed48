/**
 * Bare node:http plumbing both mocks use: bounded body reading, request
 * targets, the few response shapes they answer with (JSON that must not be
 * cached, text and HTML pages, redirects, empty 200s), listening and closing.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** IMS refuses large bodies; the mock does it at 64 KB. */
export const BODY_LIMIT = 64 * 1024
/** Past this, a client is not worth answering: its connection is cut. */
const DRAIN_LIMIT = 16 * BODY_LIMIT

export class BodyTooLargeError extends Error {}

/**
 * Reads the whole body. Past the limit it keeps reading but discards, so that
 * the client, done sending, can read the 413 (BodyTooLargeError); past the
 * drain limit it gives up and destroys the request.
 */
export async function readBody (req: IncomingMessage, limit = BODY_LIMIT): Promise<string> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
      else if (size > DRAIN_LIMIT) req.destroy(new BodyTooLargeError())
    })
    req.on('end', () => {
      if (size > limit) reject(new BodyTooLargeError())
      else resolve(Buffer.concat(chunks).toString('utf8'))
    })
    req.on('error', reject)
  })
}

/** The body as form parameters, or undefined when it was not sent as a form. */
export function formParams (req: IncomingMessage, body: string): URLSearchParams | undefined {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  return type === 'application/x-www-form-urlencoded' ? new URLSearchParams(body) : undefined
}

/** Splits a request target by hand: `new URL()` would read `//host/path` as another host. */
export function splitTarget (target: string): { path: string, query: URLSearchParams } {
  const mark = target.indexOf('?')
  if (mark === -1) return { path: target, query: new URLSearchParams() }
  return { path: target.slice(0, mark), query: new URLSearchParams(target.slice(mark + 1)) }
}

/** The name of the first parameter given more than once (RFC 6749 §3.1, §3.2 forbid repeats). */
export function repeatedParam (params: URLSearchParams): string | undefined {
  const seen = new Set<string>()
  for (const name of params.keys()) {
    if (seen.has(name)) return name
    seen.add(name)
  }
  return undefined
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json;charset=utf-8',
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers
  })
  res.end(text)
}

/** An OAuth error response: `{ error, error_description }`. */
export function sendOAuthError (res: ServerResponse, status: number, error: string, description?: string, headers?: Record<string, string>): void {
  sendJson(res, status, description === undefined ? { error } : { error, error_description: description }, headers)
}

/** `contentType` undefined: no Content-Type at all, as for Lightroom's empty 429. */
export function sendText (res: ServerResponse, status: number, text: string, contentType: string | undefined, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...(contentType === undefined ? {} : { 'Content-Type': contentType }),
    'Cache-Control': 'no-store',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers
  })
  res.end(text)
}

export function sendHtml (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  sendText(res, status, html, 'text/html;charset=utf-8', headers)
}

export function sendEmpty (res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Cache-Control': 'no-store', 'Content-Length': '0', ...headers })
  res.end()
}

export function redirect (res: ServerResponse, location: string): void {
  sendEmpty(res, 302, { Location: location })
}

/**
 * Tracks a mock server's sockets so close() can end them all at once: keep-alive connections,
 * and requests still sending a body, which closeAllConnections() does not cover.
 */
export function closableServer (server: Server): () => Promise<void> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  let closing: Promise<void> | undefined
  return async () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
      for (const socket of sockets) socket.destroy()
    })
    await closing
  }
}

/** Listens on host:port (0: a free port) and returns the origin, IPv6 literals bracketed. */
export async function listenOrigin (server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
}
