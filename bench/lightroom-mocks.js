// The mock IMS and mock Lightroom in a process of their own, for the Lightroom benchmarks: the app
// under test (bench/server.js lightroom) and autocannon then each get a core.
// Prints one JSON line { discoveryUrl, lightroomOrigin } when ready.
import { createMockIms, createMockLightroom } from 'fastify-lightroom-ims/testing'

const ims = await createMockIms({ accessTokenLifetimeSeconds: 86400 })
const lightroom = await createMockLightroom({ ims, library: { assets: 10_000, albums: 12 }, renditionSizes: { 2048: 2_000_000 } })
process.stdout.write(`${JSON.stringify({ url: lightroom.origin, discoveryUrl: ims.discoveryUrl, lightroomOrigin: lightroom.origin })}\n`)
process.on('SIGTERM', async () => {
  await lightroom.close()
  await ims.close()
  process.exit(0)
})
