import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'

/** A free loopback port, for servers whose URL must be known before they start (redirect URIs). */
export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}
