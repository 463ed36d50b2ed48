import t from 'tap'

/** CI sets CI=true: there a missing system dependency fails the run instead of skipping tests. */
export function inCi (): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== 'false'
}

/**
 * Why a test file cannot run (a system package is missing), or undefined when it can. Outside CI
 * the file then skips with that message; in CI this throws, which fails the file.
 */
export function unavailable (missing: string, install: string, what: string): string {
  if (inCi()) throw new Error(`${missing}: ${install}. CI must run ${what}, not skip them.`)
  return `${missing}: ${install}; skipping ${what}`
}

/** For the top of a test file: run its tests, or skip the whole file for the reason given. */
export async function runUnlessUnavailable (reason: string | undefined, main: () => Promise<void>): Promise<void> {
  if (reason !== undefined) {
    t.plan(0, reason)
    return
  }
  await main()
}
