import { test } from 'tap'
import { harness, signIn } from './helpers/setup.js'

test('the harness fails a test whose app logs a token', async (t) => {
  const h = await harness({
    routes: (app) => app.get('/leaky', async (request) => {
      request.log.info({ token: await request.lightroomToken() }, 'oops')
      return 'ok'
    })
  })
  const browser = h.browser()
  await signIn(browser)
  await browser.get('/leaky')
  await t.rejects(h.close(), /secrets leaked into logs or responses: log: /)
})

test('the harness fails a test whose error answer quotes a secret', async (t) => {
  const h = await harness({
    routes: (app) => app.get('/echo', async (_request, reply) => await reply.code(500).send({ message: h.secrets()[0] }))
  })
  await signIn(h.browser())
  await h.app.inject('/echo')
  await t.rejects(h.close(), /response: /)
})
