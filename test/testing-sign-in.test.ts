import { test } from 'tap'
import { signIn } from '../lib/testing/index.js'
import { harness } from './helpers/setup.js'

const ADA = { sub: 'ADA0000000000000000000AA@AdobeID', email: 'ada@example.com' }
const GRACE = { sub: 'GRACE00000000000000000BB@AdobeID', email: 'grace@example.com' }

test('signIn(app, { ims, user }) returns a session cookie that the app accepts, for the user asked for', async (t) => {
  const h = await harness({
    ims: { users: [ADA, GRACE] },
    routes: (app) => app.get('/who', async (request) => ({ userId: await request.lightroomUserId() ?? null }))
  })
  t.teardown(h.close)
  const ada = await signIn(h.app, { ims: h.ims })
  t.equal(ada.userId, ADA.sub, 'the first user by default')
  t.match(ada.cookie, /lr_session=/)
  t.notMatch(ada.cookie, /lr_oauth_/, 'the spent flow cookies are not part of the session')
  t.same((await h.app.inject({ url: '/who', headers: { cookie: ada.cookie } })).json(), { userId: ADA.sub })
  t.equal((await h.app.inject({ url: '/token', headers: { cookie: ada.cookie } })).statusCode, 200, 'lightroomToken() works with it')

  const grace = await signIn(h.app, { ims: h.ims, user: GRACE })
  t.equal(grace.userId, GRACE.sub)
  t.same((await h.app.inject({ url: '/who', headers: { cookie: grace.cookie } })).json(), { userId: GRACE.sub })
  const bySub = await signIn(h.app, { ims: h.ims, user: ADA.sub })
  t.same((await h.app.inject({ url: '/who', headers: { cookie: bySub.cookie } })).json(), { userId: ADA.sub }, 'a sub works as well as a user')
  t.not(bySub.cookie, ada.cookie, 'every sign-in is a new session')
})

test('signIn answers the consent page by allowing, and says clearly what went wrong', async (t) => {
  const h = await harness({ ims: { consent: true } })
  t.teardown(h.close)
  const session = await signIn(h.app, { ims: h.ims })
  t.equal((await h.app.inject({ url: '/token', headers: { cookie: session.cookie } })).statusCode, 200)
  await t.rejects(signIn(h.app, { ims: h.ims, user: 'nobody@AdobeID' }), { name: 'TypeError', message: /unknown user nobody@AdobeID/ })
  await t.rejects(signIn(h.app, { ims: h.ims, routePrefix: '/nope' }), { message: /\/nope\/login answered 404/ })
  h.ims.fail('token', { status: 503 }, 1)
  await t.rejects(signIn(h.app, { ims: h.ims }), { message: /the callback answered 502/ })
})
