// renewExpiring over many users against the mock IMS, paced at maxPerSecond: how close the run
// comes to the ideal users / maxPerSecond seconds, and the renewing process's RSS while it runs.
// Usage: npm run build && node bench/renewal.js [users] [maxPerSecond]; prints one JSON line.
// bench/run.js calls runRenewalBench().
import Fastify from 'fastify'
import lrImsPlugin, { encryptedStore, memoryBackend } from 'fastify-lightroom-ims'
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Agent, request } from 'undici'
// The plugin's own token-response parsing, so the records written are exactly what a sign-in stores.
import { parseTokenResponse } from '../dist/lib/auth/token-set.js'

const here = new URL('.', import.meta.url).pathname
const DAY = 86_400_000
const REDIRECT_URI = 'http://127.0.0.1/auth/lightroom/callback'
// No openid: the setup needs grants, not id_tokens, and each id_token is one more RSA signature.
const SCOPE = 'AdobeID,lr_partner_apis,offline_access'

export async function runRenewalBench ({ users = 10_000, maxPerSecond = 500, concurrency = 16, sampleEveryMs = 100 } = {}) {
  const subs = Array.from({ length: users }, (_, i) => `BENCH${String(i).padStart(8, '0')}@AdobeID`)
  const dir = mkdtempSync(join(tmpdir(), 'lr-bench-renewal-'))
  writeFileSync(join(dir, 'users.json'), JSON.stringify(subs))
  const child = fork(`${here}renewal-ims.js`, [join(dir, 'users.json')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [ims] = await once(child, 'message')
  const imsStats = async () => {
    child.send('count')
    const [answer] = await once(child, 'message')
    return answer
  }
  const agent = new Agent({ connections: 32 })
  const backend = memoryBackend()
  const store = encryptedStore(backend, { keys: [{ id: 'bench', key: randomBytes(32) }] })
  const app = Fastify({ logger: false })
  try {
    await app.register(lrImsPlugin, {
      clientId: ims.clientId,
      clientSecret: ims.clientSecret,
      redirectUri: REDIRECT_URI,
      discoveryUrl: ims.discoveryUrl,
      cookieSecret: 'bench-cookie-secret-long-enough-0123456789',
      store
    })
    await app.ready()
    await signInAll(ims, subs, store, agent)

    globalThis.gc?.()
    const heapStart = process.memoryUsage().heapUsed
    const before = await imsStats()
    const cpuBefore = process.cpuUsage()
    const rss = []
    const sample = () => rss.push(process.memoryUsage().rss)
    sample()
    const sampler = setInterval(sample, sampleEveryMs)
    const started = performance.now()
    const report = await app.lightroom.renewExpiring({ maxPerSecond, concurrency })
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    clearInterval(sampler)
    sample()
    globalThis.gc?.()
    const heapEnd = process.memoryUsage().heapUsed
    if (!report.completed || report.renewed !== users) throw new Error(`renewal incomplete: ${JSON.stringify(report)}`)
    const after = await imsStats()
    const idealSeconds = users / maxPerSecond
    const mb = (bytes) => Math.round(bytes / 2 ** 20)
    return {
      users,
      maxPerSecond,
      concurrency,
      seconds: Number(seconds.toFixed(2)),
      idealSeconds,
      withinPercent: Number((((seconds - idealSeconds) / idealSeconds) * 100).toFixed(1)),
      rssStartMB: mb(rss[0]),
      rssPeakMB: mb(Math.max(...rss)),
      rssEndMB: mb(rss.at(-1)),
      // With --expose-gc: live heap before and after, garbage collected (what the run kept).
      ...(globalThis.gc === undefined ? {} : { heapStartMB: mb(heapStart), heapEndMB: mb(heapEnd) }),
      imsCalls: (after.refreshCalls - before.refreshCalls),
      // CPU seconds each side spent during the run: on a loaded machine, a run well over the ideal
      // with these far below the wall time was starved of CPU, not held back by the pacing.
      appCpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
      imsCpuSeconds: Number((after.cpuSeconds - before.cpuSeconds).toFixed(2)),
      loadAverage: Number(loadavg()[0].toFixed(1))
    }
  } finally {
    await app.close()
    await agent.close()
    child.disconnect()
    await once(child, 'exit')
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Each user's grant straight from the mock IMS (authorize with login_hint, then the code exchange),
 * stored as the plugin stores a sign-in's tokens, then made eight days old: due for renewal.
 */
async function signInAll (ims, subs, store, dispatcher, parallel = 16) {
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < subs.length) {
      const sub = subs[next++]
      const authorize = await request(`${ims.origin}/ims/authorize/v2?${new URLSearchParams({ client_id: ims.clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: SCOPE, login_hint: sub })}`, { dispatcher })
      await authorize.body.dump()
      const code = new URL(authorize.headers.location).searchParams.get('code')
      if (code === null) throw new Error(`authorize answered ${authorize.statusCode} ${authorize.headers.location}`)
      const exchange = await request(`${ims.origin}/ims/token/v3`, {
        dispatcher,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: ims.clientId, client_secret: ims.clientSecret }).toString()
      })
      const body = await exchange.body.json()
      if (exchange.statusCode !== 200) throw new Error(`token exchange answered ${exchange.statusCode}`)
      const set = parseTokenResponse(body, { now: Date.now(), userId: sub })
      set.receivedAt -= 8 * DAY
      set.refreshIssuedAt = (set.refreshIssuedAt ?? Date.now()) - 8 * DAY
      await store.set(`tokens:${sub}`, set, 15 * DAY)
    }
  }))
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runRenewalBench({ users: Number(process.argv[2] ?? 10_000), maxPerSecond: Number(process.argv[3] ?? 500) })
  process.stdout.write(`${JSON.stringify(result)}\n`)
}
