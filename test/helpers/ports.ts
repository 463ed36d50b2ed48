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

/**
 * Starts a server on a free port and resolves the port it got. Someone may take the port between
 * freePort() and the server binding it: then one more try, on another.
 */
export async function startOnFreePort (start: (port: number) => Promise<void>): Promise<number> {
  const port = await freePort()
  try {
    await start(port)
    return port
  } catch {
    const other = await freePort()
    await start(other)
    return other
  }
}
