import { createMockIms } from '../dist/lib/testing/index.js'
import { request } from 'undici'
const ims = await createMockIms()
const c = ims.clients[0]
async function grant () {
  const a = await request(`${ims.origin}/ims/authorize/v2?client_id=${c.clientId}&redirect_uri=${encodeURIComponent('http://127.0.0.1/cb')}&response_type=code&scope=openid,AdobeID,lr_partner_apis,offline_access`)
  await a.body.dump()
  const code = new URL(a.headers.location).searchParams.get('code')
  const r = await request(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1/cb', client_id: c.clientId, client_secret: c.clientSecret }).toString() })
  return (await r.body.json()).refresh_token
}
const tokens = []
let t0 = Date.now()
for (let i = 0; i < 2000; i++) tokens.push(await grant())
console.log('grants/s', 2000 / ((Date.now() - t0) / 1000))
t0 = Date.now()
let i = 0
await Promise.all(Array.from({ length: 16 }, async () => {
  while (i < tokens.length) {
    const rt = tokens[i++]
    const r = await request(`${ims.origin}/ims/token/v3`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, client_id: c.clientId, client_secret: c.clientSecret }).toString() })
    await r.body.json()
  }
}))
console.log('refresh/s', 2000 / ((Date.now() - t0) / 1000))
await ims.close()
