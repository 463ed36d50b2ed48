/**
 * Lightroom's response bodies: JSON behind an anti-JSON-hijacking prefix
 * (`while (1) {}`), on errors too, and error objects in two shapes depending
 * on whether the API or the gateway in front of it answered.
 */

/** The prefix and the whitespace after it; anchored, so JSON that merely contains it is left alone. */
const HIJACK_PREFIX = /^while\s*\(\s*1\s*\)\s*{\s*}\s*/

export function stripHijackPrefix (text: string): string {
  return text.replace(HIJACK_PREFIX, '')
}

/** The parsed body; undefined when it is empty (a 429). Throws SyntaxError when it is not JSON. */
export function parseLightroomBody (text: string): unknown {
  const json = stripHijackPrefix(text)
  return json.trim() === '' ? undefined : JSON.parse(json)
}

/** Like parseLightroomBody, but undefined for anything that is not JSON (a gateway's HTML page). */
export function tryParseLightroomBody (text: string): unknown {
  try {
    return parseLightroomBody(text)
  } catch {
    return undefined
  }
}

export function isJsonObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export interface LightroomErrorBody {
  /** As a string: the API sends `"403003"` or `1000`, the gateway `error_code`. */
  code: string | undefined
  description: string | undefined
}

/**
 * Reads both shapes: the API's `{ code, description }` and the gateway's
 * `{ error_code, message }`.
 */
export function readErrorBody (body: unknown): LightroomErrorBody {
  if (!isJsonObject(body)) return { code: undefined, description: undefined }
  return {
    code: codeString(body['code']) ?? codeString(body['error_code']),
    description: textOf(body['description']) ?? textOf(body['message'])
  }
}

function codeString (value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return undefined
}

function textOf (value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}
