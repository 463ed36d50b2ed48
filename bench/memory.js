// RSS growth for N signed-in users in the memory backend, next to the size of one stored record.
// Run with --expose-gc. Prints one JSON line.
import { encryptedStore, memoryBackend } from 'fastify-lightroom-ims'
import { createMockIms } from 'fastify-lightroom-ims/testing'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'

const USERS = Number(process.argv[2] ?? 100_000)

// One realistic token set: real JWT-sized tokens from the mock IMS (IMS's are of the same shape).
const ims = await createMockIms()
const client = ims.clients[0]
const authorize = await request(`${ims.origin}/ims/authorize/v2?client_id=${client.clientId}&redirect_uri=${encodeURIComponent('http://127.0.0.1/cb')}&response_type=code&scope=openid,AdobeID,lr_partner_apis,offline_access`)
await authorize.body.dump()
const code = new URL(authorize.headers.location).searchParams.get('code')
const exchange = await request(`${ims.origin}/ims/token/v3`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1/cb', client_id: client.clientId, client_secret: client.clientSecret }).toString()
})
const body = await exchange.body.json()
await ims.close()

const backend = memoryBackend()
const store = encryptedStore(backend, { keys: [{ id: 'k1', key: randomBytes(32) }] })
const template = {
  userId: '',
  accessToken: body.access_token,
  refreshToken: body.refresh_token,
  tokenType: 'bearer',
  scope: 'openid,AdobeID,lr_partner_apis,offline_access',
  accessExpiresAt: Date.now() + 86_400_000,
  refreshIssuedAt: Date.now(),
  refreshExpiresAt: Date.now() + 14 * 86_400_000,
  receivedAt: Date.now()
}

globalThis.gc()
const before = process.memoryUsage()
let recordBytes = 0
for (let i = 0; i < USERS; i++) {
  const userId = `${randomBytes(12).toString('hex').toUpperCase()}@AdobeID`
  // Distinct token strings per user, as in real life (no sharing of one big string).
  const set = { ...template, userId, accessToken: template.accessToken.slice(0, -8) + randomBytes(6).toString('base64url'), refreshToken: template.refreshToken.slice(0, -8) + randomBytes(6).toString('base64url') }
  await store.set(`tokens:${userId}`, set, 15 * 86_400_000)
  await store.set(`session:${randomBytes(32).toString('base64url')}`, { userId, createdAt: Date.now() }, 30 * 86_400_000)
  if (i === 0) {
    for await (const key of backend.scan('')) recordBytes += key.length + (await backend.get(key)).length
  }
}
globalThis.gc()
const after = process.memoryUsage()
process.stdout.write(`${JSON.stringify({
  users: USERS,
  recordBytes,
  rssPerUser: (after.rss - before.rss) / USERS,
  heapPerUser: (after.heapUsed - before.heapUsed) / USERS,
  size: backend.size
})}\n`)
