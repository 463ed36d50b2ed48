// Signs a user in through the real routes: app.inject for the app, real HTTP for the mock IMS.
import { request } from 'undici'

function cookiesFrom (setCookie) {
  const jar = {}
  for (const line of [].concat(setCookie ?? [])) {
    const [pair] = line.split(';')
    const eq = pair.indexOf('=')
    const value = pair.slice(eq + 1)
    if (value !== '') jar[pair.slice(0, eq)] = value
  }
  return jar
}

const header = (jar) => Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ')

/** Returns the Cookie header of a signed-in browser. */
export async function signIn (app, prefix = '/auth/lightroom') {
  const login = await app.inject({ url: `${prefix}/login` })
  const jar = cookiesFrom(login.headers['set-cookie'])
  const authorize = await request(login.headers.location)
  await authorize.body.dump()
  const callback = new URL(authorize.headers.location)
  const done = await app.inject({ url: `${callback.pathname}${callback.search}`, headers: { cookie: header(jar) } })
  if (done.statusCode !== 303) throw new Error(`sign-in failed: ${done.statusCode} ${done.body}`)
  return header(cookiesFrom(done.headers['set-cookie']))
}
