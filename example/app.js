// The example app: sign in with Adobe, then show what the Lightroom API says about the user.
// Everything here is what a partner backend needs; demo.js only decides what it talks to.
import Fastify from 'fastify'
import lrImsPlugin, { LightroomApiError, LightroomAuthError, isEntitled } from 'fastify-lightroom-ims'
import { errorPage, landingPage, mePage } from './pages.js'
import { photoRoutes } from './photos.js'

// No scripts at all, images only from this app (renditions streamed through it), styles only inline, forms only to ourselves, and no framing (which would allow
// clickjacking the sign-out and refresh buttons): pages showing personal data deserve the strictest policy.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin'
}

/**
 * Builds the app, ready to listen. `imsDiscoveryUrl` and `lightroomBaseUrl` default to Adobe's
 * production services; demo.js points them at the bundled mocks.
 */
export async function buildApp ({ imsDiscoveryUrl, clientId, clientSecret, redirectUri, lightroomBaseUrl, store, cookieSecret, logger = false }) {
  const app = Fastify({ logger })

  // HTML forms post application/x-www-form-urlencoded, which Fastify refuses (415) without a parser,
  // even with an empty body, and "Refresh now" is such a form. Registered before the plugin, so that
  // its routes parse forms the same way.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)))
  })
  app.addHook('onSend', async (request, reply, payload) => {
    reply.headers(SECURITY_HEADERS)
    return payload
  })

  await app.register(lrImsPlugin, {
    clientId,
    clientSecret,
    redirectUri,
    discoveryUrl: imsDiscoveryUrl,
    lightroomBaseUrl,
    store,
    cookieSecret
  })

  // An audit trail: who signed in, when and why tokens were refreshed, why users were signed out.
  // The payloads carry user ids and times, never a token, so they can be logged as they are.
  const { events } = app.lightroom
  events.on('signIn', ({ userId }) => app.log.info({ userId }, 'lightroom: user signed in'))
  events.on('refresh', ({ userId, reason, accessExpiresAt }) => app.log.info({ userId, reason, accessExpiresAt }, 'lightroom: access token refreshed'))
  events.on('refreshFailed', ({ userId, reason, error, transient }) => app.log.warn({ userId, reason, error, transient }, 'lightroom: access token refresh failed'))
  events.on('logout', ({ userId, reason }) => app.log.info({ userId, reason }, 'lightroom: user signed out'))

  app.get('/', async (request, reply) => {
    const signedIn = (await request.lightroomUserId()) !== undefined
    return sendPage(reply, landingPage({ signedIn, loginUrl: app.lightroom.loginUrl('/me'), logoutUrl: app.lightroom.logoutUrl() }))
  })

  // requireLogin sends a browser that is not signed in to Adobe, and back here afterwards.
  app.get('/me', { preHandler: app.lightroom.requireLogin }, async (request, reply) => {
    const lightroom = request.lightroomApi()
    const account = await lightroom.account()
    // Only trial and subscriber accounts may use the partner APIs: ask for nothing more otherwise.
    const entitled = isEntitled(account)
    const catalog = entitled ? await lightroom.catalog() : undefined
    // Expiry times only, never the token. Read after the API calls: it then describes the token they
    // used, which they may just have refreshed.
    const token = await request.lightroomTokenInfo()
    reply.header('cache-control', 'no-store')
    return sendPage(reply, mePage({
      account,
      entitled,
      catalog,
      token,
      now: Date.now(),
      refreshed: request.query.refreshed === '1',
      logoutUrl: app.lightroom.logoutUrl()
    }))
  })

  // What an app does after Lightroom rejected a token that looked valid (the API client already does
  // it by itself for its own calls); here it is a button, to watch a refresh happen. Cross-site forms
  // cannot trigger it: the session cookie is SameSite=Lax, so their POST arrives signed out.
  app.post('/me/refresh', { preHandler: app.lightroom.requireLogin }, async (request, reply) => {
    await request.lightroomToken({ force: true })
    // 303: the browser follows with a GET, so reloading /me does not post the form again.
    return reply.redirect('/me?refreshed=1', 303)
  })

  // The photo browser: albums, an album's photos, one photo, an upload.
  photoRoutes(app, sendPage)

  app.setNotFoundHandler(async (request, reply) => {
    reply.code(404)
    return sendPage(reply, errorPage({ title: 'Page not found', message: 'There is nothing at this address.', action: { href: '/', label: 'Go to the start page' } }))
  })

  app.setErrorHandler(async (error, request, reply) => {
    const { status, page } = describeError(error, request, app.lightroom.loginUrl)
    reply.code(status).header('cache-control', 'no-store')
    return sendPage(reply, errorPage(page))
  })

  return app
}

function sendPage (reply, page) {
  return reply.type('text/html; charset=utf-8').send(page.toString())
}

/**
 * A friendly page for what can go wrong, and a log line for operators. Messages of our own only:
 * neither error class carries a token, but upstream text does not belong in front of users.
 */
function describeError (error, request, loginUrl) {
  const retryLater = { href: request.method === 'GET' ? request.url : '/me', label: 'Try again' }
  if (error instanceof LightroomAuthError) {
    request.log.warn({ code: error.code, statusCode: error.statusCode }, 'lightroom: authentication problem')
    if (error.code === 'LR_LOGIN_REQUIRED') {
      // The grant is gone: the user disconnected this app at Adobe, or was signed out elsewhere.
      return {
        status: 401,
        page: { title: 'Please sign in again', message: 'Your Adobe sign-in has ended, so Lightroom cannot be reached on your behalf.', code: error.code, action: { href: loginUrl('/me'), label: 'Sign in with Adobe' } }
      }
    }
    if (error.statusCode >= 500) {
      return { status: 503, page: { title: 'Adobe sign-in is unavailable', message: 'Adobe could not be reached to renew your access. Please try again in a minute.', code: error.code, action: retryLater } }
    }
    return { status: error.statusCode, page: { title: 'Sign-in problem', message: 'Your Adobe sign-in could not be used. Please sign in again.', code: error.code, action: { href: loginUrl('/me'), label: 'Sign in with Adobe' } } }
  }
  if (error instanceof LightroomApiError) {
    request.log.warn({ code: error.lightroomCode, statusCode: error.statusCode, path: error.path, transient: error.transient }, 'lightroom: API call failed')
    if (error.transient) {
      return { status: 503, page: { title: 'Lightroom is busy', message: 'Lightroom did not answer in time. Please try again in a minute.', code: error.lightroomCode, action: retryLater } }
    }
    return { status: 502, page: { title: 'Lightroom refused the request', message: 'Lightroom answered with an error, so your account cannot be shown right now.', code: error.lightroomCode, action: retryLater } }
  }
  const status = error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
  if (status === 500) request.log.error({ err: error }, 'unexpected error')
  return { status, page: { title: 'Something went wrong', message: status === 500 ? 'An unexpected error happened on our side.' : 'This request could not be handled.', action: { href: '/', label: 'Go to the start page' } } }
}
