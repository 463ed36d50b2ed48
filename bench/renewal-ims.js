// The mock IMS for bench/renewal.js, in a process of its own: it gets a core, and what it keeps
// of every token it issued does not count in the renewing process's memory.
// Forked with the user ids as a JSON file path; sends { discoveryUrl, origin, clientId,
// clientSecret } when ready and answers { refreshCalls, cpuSeconds } to every 'count' message.
import { createMockIms } from 'fastify-lightroom-ims/testing'
import { readFileSync } from 'node:fs'

const subs = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const ims = await createMockIms({ users: subs.map((sub) => ({ sub })), accessTokenLifetimeSeconds: 86_400 })
const [client] = ims.clients
process.send({ discoveryUrl: ims.discoveryUrl, origin: ims.origin, clientId: client.clientId, clientSecret: client.clientSecret })
process.on('message', (message) => {
  if (message !== 'count') return
  const cpu = process.cpuUsage()
  process.send({ refreshCalls: ims.count('token:refresh_token'), cpuSeconds: (cpu.user + cpu.system) / 1e6 })
})
process.on('disconnect', async () => {
  await ims.close()
  process.exit(0)
})
