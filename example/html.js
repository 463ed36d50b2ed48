// A tiny, safe-by-default HTML template tag. Every interpolated value is escaped unless it is itself
// the result of `html` (a fragment we built), so user data from Lightroom (names, catalog names) can
// never turn into markup, and forgetting to escape is impossible rather than merely unlikely.

const kSafe = Symbol('safe html')

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for use in element content and in quoted attribute values. */
export function escapeHtml (value) {
  return String(value).replace(/[&<>"']/g, (char) => ESCAPES[char])
}

function render (value) {
  // null, undefined and false render nothing, so `${condition && html`...`}` reads naturally.
  if (value === null || value === undefined || value === false) return ''
  if (Array.isArray(value)) return value.map(render).join('')
  if (typeof value === 'object' && value[kSafe] === true) return value.text
  return escapeHtml(value)
}

/** html`<p>${untrusted}</p>`: a fragment whose interpolations are escaped; fragments nest unescaped. */
export function html (strings, ...values) {
  let text = strings[0]
  for (let i = 0; i < values.length; i++) text += render(values[i]) + strings[i + 1]
  return { [kSafe]: true, text, toString: () => text }
}
