/**
 * Helpers shared by the tests of the networked backends (Redis, PostgreSQL): every StoreBackend
 * operation once, for the outage tests; an app over the backend with a signed-in browser; a free
 * loopback port for their private servers.
 */
import type { Test } from 'tap'
import type { LightroomImsOptions } from '../../index.js'
import type { BackendLock, StoreBackend } from '../../lib/store/types.js'
import type { TestingHooks } from '../../lib/testing/index.js'
import { harness, signIn, type Harness } from './setup.js'

/** Each operation of the contract, by name, over the record `kept` and an already taken lock. */
export function everyOperation (backend: StoreBackend, lock: BackendLock | undefined): Array<[string, () => Promise<unknown>]> {
  return [
    ['get', async () => await backend.get('kept')],
    ['set', async () => { await backend.set('k', 'v') }],
    ['compareAndSet', async () => await backend.compareAndSet('k', undefined, 'v')],
    ['delete', async () => { await backend.delete('k') }],
    ['compareAndDelete', async () => await backend.compareAndDelete('k', 'v')],
    ['tryLock', async () => await backend.tryLock('l', 1000)],
    ['extend', async () => await lock?.extend(1000)],
    ['release', async () => { await lock?.release() }],
    ['scan', async () => {
      const keys: string[] = []
      for await (const key of backend.scan('')) keys.push(key)
      return keys
    }]
  ]
}

/** An app over this backend with one signed-in browser, and a GET /token with its cookie. */
export async function signedInOver (t: Test, backend: StoreBackend, plugin: Partial<TestingHooks & LightroomImsOptions> = {}): Promise<{ h: Harness, get: () => Promise<{ status: number, code?: string, token?: string }> }> {
  const h = await harness({ backend, plugin })
  t.teardown(h.close)
  const browser = h.browser()
  await signIn(browser)
  const cookie = browser.cookieHeader()
  const get = async (): Promise<{ status: number, code?: string, token?: string }> => {
    const response = await h.app.inject({ url: '/token', headers: { cookie } })
    return { status: response.statusCode, ...response.json() }
  }
  return { h, get }
}
