/**
 * The one fake clock of the tests: pass `now` where code takes a clock (the mock IMS's and the
 * plugin's `now` option, memoryBackend's), or `t.capture(Date, 'now', clock.now)` where it reads
 * Date.now(). Time stands still until the test moves it, instead of waiting.
 */
export interface FakeClock {
  now: () => number
  advance: (ms: number) => void
}

export function fakeClock (start = Date.now()): FakeClock {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}
