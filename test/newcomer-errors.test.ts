import { test } from 'tap'
import { harness } from './helpers/setup.js'

test('a sign-in that comes back to another host than it started on gets a page that says so', async (t) => {
  const h = await harness()
  t.teardown(h.close)
  // The sign-in starts in one browser "site" (its cookies stay there)...
  const started = h.browser()
  const toIms = await started.follow('/auth/lightroom/login', { stopAt: (location) => location.pathname.endsWith('/callback') })
  const callback = new URL(toIms.location!, toIms.url)
  // ...and IMS sends the browser back to the redirect URI's host, where no flow cookie exists.
  const elsewhere = h.browser()
  const page = await elsewhere.get(`${callback.pathname}${callback.search}`, { accept: 'text/html' })
  t.equal(page.status, 400)
  t.match(page.body, /did not come back to app\.test/)
  t.match(page.body, /127\.0\.0\.1 and localhost are different sites/)
  t.match(page.body, /start again at https:\/\/app\.test\/auth\/lightroom\/login/)
  t.match(page.body, /LR_BAD_STATE/)
  const json = await h.browser().get(`${callback.pathname}${callback.search}`, { accept: 'application/json' })
  t.match(JSON.parse(json.body), { statusCode: 400, code: 'LR_BAD_STATE', message: /did not come back/ }, 'API callers get the same explanation')
})
