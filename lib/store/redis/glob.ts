/** Escapes the glob characters of SCAN's MATCH, so that text matches itself only. */
export function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
