/**
 * The system's Chromium for browser tests, driven by playwright-core (which never downloads a
 * browser of its own). Debian's `chromium` package puts it at /usr/bin/chromium; CHROMIUM_PATH
 * overrides that (another distribution, a Chrome on a developer's machine).
 *
 * Without it, CI fails: a skipped browser test would let a broken sign-in page through unnoticed.
 * Locally the file is skipped with a message saying what to install.
 */
import { accessSync, constants } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { unavailable } from './system-dependency.js'

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser']

/**
 * Quiet and offline: no GPU, no QUIC, and none of the background calls to Google (component
 * updates, sync, safe-browsing lists) that would leave loopback. --no-sandbox because CI runs as root.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

function executable (path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The Chromium binary to use, or undefined when there is none. */
export function findChromium (): string | undefined {
  const override = process.env.CHROMIUM_PATH
  if (override !== undefined && override !== '') return executable(override) ? override : undefined
  return CANDIDATES.find(executable)
}

/**
 * For the top of a test file: undefined when Chromium is there, else why the file skips. In CI it
 * throws instead, which fails the file.
 */
export function chromiumUnavailableReason (): string | undefined {
  if (findChromium() !== undefined) return undefined
  const where = process.env.CHROMIUM_PATH ? `CHROMIUM_PATH (${process.env.CHROMIUM_PATH}) is not an executable` : `no Chromium at ${CANDIDATES.join(' or ')}`
  return unavailable(where, 'install it (apt-get install chromium) or set CHROMIUM_PATH', 'the browser tests')
}

/** A headless Chromium; the caller closes it. */
export async function launchChromium (): Promise<Browser> {
  const executablePath = findChromium()
  if (executablePath === undefined) throw new Error(chromiumUnavailableReason() ?? 'Chromium not found')
  return await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 30_000 })
}
