const MAX_RETURN_TO_LENGTH = 2048
const PLACEHOLDER_ORIGIN = 'http://return-to.invalid'

/**
 * Accepts only a same-origin relative path ("/photos?id=1") and returns it normalised, or undefined.
 * Browsers are lenient in ways that turn innocent-looking strings into other origins: "//evil",
 * "/\evil" (backslash read as slash), tabs and newlines stripped out of "/\t/evil", and dot segments
 * that normalise "/.//evil" into "//evil". Each is refused here, and the normalised result is checked
 * again, because it is the normalised form that ends up in the Location header.
 */
export function safeReturnTo (value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_RETURN_TO_LENGTH) return undefined
  if (value[0] !== '/' || value[1] === '/' || value[1] === '\\') return undefined
  // Backslashes and control characters (C0, DEL) have no business in a path we redirect to.
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001F\u007F]/.test(value)) return undefined
  let url: URL
  try {
    url = new URL(value, PLACEHOLDER_ORIGIN)
  } catch {
    return undefined
  }
  if (url.origin !== PLACEHOLDER_ORIGIN) return undefined
  const normalised = `${url.pathname}${url.search}${url.hash}`
  if (!normalised.startsWith('/') || normalised.startsWith('//') || normalised.startsWith('/\\')) return undefined
  // Percent-encoding can grow it several-fold, and it travels in the OAuth state, which IMS caps at
  // 4096 characters: a longer state would make IMS refuse the whole sign-in.
  if (normalised.length > MAX_RETURN_TO_LENGTH) return undefined
  return normalised
}
