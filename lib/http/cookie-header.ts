/**
 * Reads one cookie straight from the Cookie header. The plugin registers @fastify/cookie only around
 * its own routes (an app that never asked for cookie parsing should not pay for it on every route):
 * outside them only the session cookie is needed, and only by requests that ask for a token.
 */
export function cookieFromHeader (header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length === 0) return undefined
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const eq = header.indexOf('=', start)
    // A segment without "=" (say "theme;") is skipped, as the cookie library does.
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) return decodeValue(header.slice(eq + 1, end).trim())
    start = end + 1
  }
  return undefined
}

function decodeValue (value: string): string | undefined {
  const unquoted = value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
  if (!unquoted.includes('%')) return unquoted
  try {
    return decodeURIComponent(unquoted)
  } catch {
    return undefined
  }
}
