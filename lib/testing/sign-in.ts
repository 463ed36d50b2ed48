/**
 * `signIn(app, { ims, user })`: a signed-in session for a host app's own tests, in one call. It runs
 * the real flow (the app's /login, the mock IMS's authorize page, consent included, the app's
 * /callback), so what a test gets is exactly what a browser would have.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { request } from 'undici'
import type { MockIms, MockImsUser } from './ims/types.js'

export interface SignInOptions {
  ims: MockIms
  /** Who signs in: a user of the mock IMS, or their `sub`. Default: the mock's first user. */
  user?: MockImsUser | string | undefined
  /** The plugin's routePrefix (with any Fastify prefix). Default '/auth/lightroom'. */
  routePrefix?: string | undefined
  /** Passed to /login as returnTo. */
  returnTo?: string | undefined
}

export interface SignedInSession {
  /** The Cookie header that carries the session: send it with app.inject or any HTTP client. */
  cookie: string
  /** The IMS user id (`sub`) the session belongs to. */
  userId: string
}

function cookieJar (setCookie: LightMyRequestResponse['headers']['set-cookie'], into: Map<string, string> = new Map()): Map<string, string> {
  for (const line of ([] as string[]).concat(setCookie ?? [])) {
    const pair = line.split(';')[0]!
    const eq = pair.indexOf('=')
    const value = pair.slice(eq + 1)
    // A cleared cookie (empty value) leaves the jar, as it leaves a browser.
    if (value === '') into.delete(pair.slice(0, eq))
    else into.set(pair.slice(0, eq), value)
  }
  return into
}

const cookieHeader = (jar: Map<string, string>): string => [...jar].map(([name, value]) => `${name}=${value}`).join('; ')

export async function signIn (app: FastifyInstance, options: SignInOptions): Promise<SignedInSession> {
  const { ims } = options
  const userId = typeof options.user === 'string' ? options.user : options.user?.sub ?? ims.users[0]?.sub
  if (userId === undefined) throw new TypeError('signIn(): the mock IMS has no users')
  ims.signInAs(userId)
  const prefix = options.routePrefix ?? '/auth/lightroom'
  const loginUrl = options.returnTo === undefined ? `${prefix}/login` : `${prefix}/login?returnTo=${encodeURIComponent(options.returnTo)}`
  const login = await app.inject({ url: loginUrl })
  const location = login.headers.location
  if (login.statusCode !== 302 || typeof location !== 'string') throw new Error(`signIn(): ${loginUrl} answered ${login.statusCode}, not a redirect to IMS`)
  const jar = cookieJar(login.headers['set-cookie'])

  let authorize = await request(location)
  if (authorize.statusCode === 200) {
    // The mock's consent page: answer it as the user would, by allowing.
    await authorize.body.dump()
    const form = new URL(location).searchParams
    form.set('decision', 'allow')
    authorize = await request(new URL(location).origin + new URL(location).pathname, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString()
    })
  }
  await authorize.body.dump()
  const back = authorize.headers.location
  if (typeof back !== 'string') throw new Error(`signIn(): the mock IMS answered ${authorize.statusCode}, not a redirect back`)
  const callback = new URL(back)
  const done = await app.inject({ url: `${callback.pathname}${callback.search}`, headers: { cookie: cookieHeader(jar) } })
  if (done.statusCode !== 303) throw new Error(`signIn(): the callback answered ${done.statusCode}: ${done.body.slice(0, 200)}`)
  cookieJar(done.headers['set-cookie'], jar)
  return { cookie: cookieHeader(jar), userId }
}
