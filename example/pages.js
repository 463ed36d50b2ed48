// The pages of the example app: plain functions from data to HTML. Every value that comes from
// Lightroom or from the request goes through the `html` tag, which escapes it.
import { html } from './html.js'

const STYLE = html`<style>
  :root { --accent: #1473e6; --ink: #2c2c2c; --muted: #6e6e6e; --line: #e6e6e6 }
  * { box-sizing: border-box }
  body { margin: 0; background: #f4f5f7; color: var(--ink); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif }
  main { max-width: 40rem; margin: 3rem auto; padding: 2rem 2.25rem; background: #fff; border-radius: 14px; box-shadow: 0 1px 4px rgb(0 0 0 / 0.1) }
  h1 { margin: 0 0 0.25rem; font-size: 1.6rem; line-height: 1.25 }
  .lead { margin: 0 0 1.75rem; color: var(--muted) }
  dl { display: grid; grid-template-columns: 9.5rem 1fr; gap: 0.75rem 1rem; margin: 0 0 2rem; padding: 1.25rem 0; border-block: 1px solid var(--line) }
  dt { color: var(--muted) }
  dd { margin: 0; overflow-wrap: anywhere }
  .hint { display: block; color: var(--muted); font-size: 0.875rem }
  meter { display: block; width: 100%; max-width: 16rem; height: 0.5rem; margin-top: 0.35rem }
  .actions { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: center }
  .actions form { margin: 0 }
  .button { display: inline-block; padding: 0.6rem 1.3rem; border: 2px solid var(--accent); border-radius: 999px; background: var(--accent); color: #fff; font: inherit; font-weight: 600; text-decoration: none; cursor: pointer }
  .button.secondary { background: #fff; color: var(--accent) }
  .button:focus-visible { outline: 3px solid #8fbfff; outline-offset: 2px }
  .notice { margin: 0 0 1.5rem; padding: 0.65rem 0.9rem; border-radius: 8px; background: #e7f5ea; color: #1b5e2a }
  .notice.warning { background: #fdf0dc; color: #7a4700 }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(7.5rem, 1fr)); gap: 0.5rem; margin: 0 0 1.5rem; padding: 0; list-style: none }
  .grid img { display: block; width: 100%; aspect-ratio: 3 / 2; object-fit: cover; border-radius: 6px; background: var(--line) }
  .albums { margin: 0 0 1.5rem; padding: 0; list-style: none }
  .albums li { padding: 0.5rem 0; border-bottom: 1px solid var(--line) }
  .albums a { color: var(--accent); font-weight: 600; text-decoration: none }
  .photo { display: block; width: 100%; aspect-ratio: 3 / 2; object-fit: cover; margin: 0 0 1rem; border-radius: 10px; background: var(--line) }
  .upload { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: center; margin: 0 0 1.5rem }
  .back { display: inline-block; margin: 0 0 1rem; color: var(--accent); text-decoration: none }
  footer { max-width: 40rem; margin: -2rem auto 2rem; padding: 0 2.25rem; color: var(--muted); font-size: 0.8rem }
</style>`

export function layout (title, body) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Lightroom partner demo</title>
${STYLE}
</head>
<body>
<main>
${body}
</main>
<footer>Example app for fastify-lightroom-ims. Tokens stay on the server, encrypted; this browser only holds a session cookie.</footer>
</body>
</html>
`
}

/** A form, not a link: signing out changes state, and the plugin accepts it only as a same-site POST. */
function signOutForm (logoutUrl) {
  return html`<form method="post" action="${logoutUrl}"><button id="sign-out" class="button secondary" type="submit">Sign out</button></form>`
}

export function landingPage ({ signedIn, loginUrl, logoutUrl }) {
  const actions = signedIn
    ? html`<a id="open-account" class="button" href="/me">Open your Lightroom account</a>${signOutForm(logoutUrl)}`
    : html`<a id="sign-in" class="button" href="${loginUrl}">Sign in with Adobe</a>`
  const lead = signedIn
    ? 'You are signed in with your Adobe ID.'
    : 'Sign in with your Adobe ID to let this app read your Lightroom account and catalog.'
  return layout('Welcome', html`
<h1>Lightroom partner demo</h1>
<p class="lead">${lead}</p>
<div class="actions">${actions}</div>`)
}

// A Map, not an object literal: the status comes from Lightroom, and 'constructor' must not match.
const ENTITLEMENTS = new Map([
  ['subscriber', 'Subscriber'],
  ['trial', 'Free trial'],
  ['trial_expired', 'Trial expired'],
  ['subscriber_expired', 'Subscription expired'],
  ['created', 'No plan yet']
])

export function mePage ({ account, entitled, catalog, token, now, refreshed, logoutUrl }) {
  const status = account.entitlement?.status
  const storage = account.entitlement?.storage
  return layout('Your account', html`
<h1>Your Lightroom account</h1>
<p class="lead">Read just now from the Lightroom API with your access token.</p>
${refreshed && html`<p id="notice" class="notice" role="status">A new access token was fetched from Adobe.</p>`}
${!entitled && html`<p class="notice warning" role="status">This account's plan does not include the Lightroom partner APIs, so only the account itself can be read.</p>`}
<dl>
  <dt>Name</dt><dd id="user-name">${account.full_name}</dd>
  <dt>Email</dt><dd id="user-email">${account.email}</dd>
  <dt>Lightroom plan</dt><dd id="entitlement">${ENTITLEMENTS.get(status) ?? status ?? 'unknown'}</dd>
  <dt>Storage</dt><dd id="storage">${storageText(storage)}${storageMeter(storage)}</dd>
  <dt>Catalog</dt><dd id="catalog-name">${catalogText(catalog)}</dd>
  <dt>Access token</dt>${tokenCell(token, now)}
</dl>
<div class="actions">
  ${entitled && catalog && html`<a id="browse-photos" class="button" href="/albums">Browse your photos</a>`}
  <form method="post" action="/me/refresh"><button id="refresh-now" class="button" type="submit">Refresh now</button></form>
  ${signOutForm(logoutUrl)}
</div>`)
}

/** `catalog` is undefined when it was not asked for (no entitlement), null when the user has none. */
function catalogText (catalog) {
  if (catalog === undefined) return 'not available on this plan'
  if (catalog === null) return 'no catalog yet'
  return catalog.payload?.name ?? 'unnamed catalog'
}

function storageText (storage) {
  if (storage === undefined || !Number.isFinite(storage.used) || !Number.isFinite(storage.limit) || storage.limit <= 0) return 'unknown'
  const percent = (storage.used / storage.limit) * 100
  const share = percent > 0 && percent < 1 ? 'under 1%' : `${Math.round(percent)}%`
  return `${formatBytes(storage.used)} of ${formatBytes(storage.limit)} used (${share})`
}

function storageMeter (storage) {
  if (storage === undefined || !(storage.limit > 0)) return null
  return html`<meter min="0" max="${storage.limit}" value="${storage.used}" high="${storage.warn ?? storage.limit * 0.9}"></meter>`
}

/** Never the token itself: only when it expires. `token` is undefined if the user was signed out meanwhile. */
function tokenCell (token, now) {
  if (token === undefined || !Number.isFinite(token.accessExpiresAt)) return html`<dd id="token-lifetime">unknown</dd>`
  const left = token.accessExpiresAt - now
  const at = new Date(token.accessExpiresAt).toISOString()
  const lifetime = left > 0
    ? html`expires in ${formatDuration(left)} (at <time datetime="${at}">${at.slice(11, 19)} UTC</time>)`
    : 'expired: the next API call fetches a new one'
  return html`<dd id="token-lifetime" data-expires-at="${token.accessExpiresAt}">${lifetime}
    <span class="hint">Refreshed automatically shortly before it expires; "Refresh now" forces it.</span></dd>`
}

export function errorPage ({ title, message, code, action }) {
  return layout(title, html`
<h1 id="error-title">${title}</h1>
<p id="error-message" class="lead">${message}</p>
${action && html`<div class="actions"><a class="button" href="${action.href}">${action.label}</a></div>`}
${code && html`<p class="hint">Error code: ${code}</p>`}`)
}

const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB']

/** Binary units, as storage plans are sized: Lightroom's "1 TB" plan is 1024 GB. */
export function formatBytes (bytes) {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  // "1.5 GB" and "49 GB": one decimal only where it still says something.
  const digits = unit > 0 && value < 10 ? 1 : 0
  return `${Number(value.toFixed(digits))} ${UNITS[unit]}`
}

export function formatDuration (ms) {
  const total = Math.max(0, Math.round(ms / 1000))
  const hours = Math.floor(total / 3600)
  const minutes = Math.floor((total % 3600) / 60)
  const seconds = total % 60
  if (hours > 0) return `${hours} h ${minutes} min`
  if (minutes > 0) return `${minutes} min ${seconds} s`
  return `${seconds} s`
}
