/**
 * The HTML IMS shows to people: the consent page, the error page for requests
 * that cannot be redirected, and the page any unknown path gets (which is why a
 * library that appends `/.well-known/...` to the bare IMS host fails on JSON).
 */

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}

function page (title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body>${body}</body></html>\n`
}

export function notFoundPage (): string {
  return page('Page not found', '<h1>Page not found</h1><p>Adobe ID (mock): this page does not exist.</p>')
}

export function messagePage (title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`)
}

/** A plain status page, as a gateway in front of IMS would answer. */
export function statusPage (status: number): string {
  return page(`Error ${status}`, `<h1>Error ${status}</h1>`)
}

/**
 * Two forms that POST back to the authorize path with every original parameter
 * in hidden fields, so the decision request is self-contained like a real one.
 */
export function consentPage (action: string, params: URLSearchParams, clientId: string, scopes: string[]): string {
  const hidden = [...params]
    .filter(([name]) => name !== 'decision')
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n')
  const form = (decision: 'allow' | 'deny', label: string): string =>
    `<form method="post" action="${escapeHtml(action)}">\n${hidden}\n` +
    `<input type="hidden" name="decision" value="${decision}">\n<button type="submit">${label}</button>\n</form>`
  const items = scopes.map((scope) => `<li>${escapeHtml(scope)}</li>`).join('')
  return page('Allow access? - Adobe ID (mock)',
    `<h1>Allow access?</h1>\n<p>The application <strong id="client-id">${escapeHtml(clientId)}</strong> asks for:</p>\n` +
    `<ul id="scopes">${items}</ul>\n${form('allow', 'Allow')}\n${form('deny', 'Deny')}`)
}
