/** A clock shared by the mock IMS and the plugin (`now` option of both): tests move time instead of waiting. */
export interface FakeClock {
  now: () => number
  advance: (ms: number) => void
}

export function fakeClock (start = Date.now()): FakeClock {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}
