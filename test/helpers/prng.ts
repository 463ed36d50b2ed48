/**
 * A seeded pseudo-random generator for generated tests (fuzz, soak): the same seed gives the same
 * inputs, so a failure seen once can be replayed. Not for anything cryptographic.
 */
export interface Rng {
  readonly seed: number
  /** A float in [0, 1). */
  next (): number
  /** An integer in [min, max). */
  int (min: number, max: number): number
  /** True with probability p. */
  chance (p: number): boolean
  pick<T> (items: readonly T[]): T
  /** A string of `length` characters drawn from `alphabet`. */
  string (length: number, alphabet: string): string
}

export function seededRng (seed: number): Rng {
  // A 32-bit state stepped by an odd constant, then mixed (the splitmix/"mulberry" family):
  // every seed gives a full-period, well-spread sequence, which is all a test generator needs.
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6D2B79F5) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min))
  return {
    seed,
    next,
    int,
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('pick() from an empty list')
      return items[int(0, items.length)] as T
    },
    string: (length, alphabet) => {
      const chars = [...alphabet]
      let out = ''
      for (let i = 0; i < length; i++) out += chars[int(0, chars.length)]
      return out
    }
  }
}

/**
 * The seed for a generated test: `LR_TEST_SEED` when set (to replay a failure), otherwise the
 * test's fixed default, so `npm test` is deterministic.
 */
export function testSeed (fallback: number): number {
  const fromEnv = process.env['LR_TEST_SEED']
  if (fromEnv === undefined || fromEnv === '') return fallback
  const seed = Number(fromEnv)
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xFFFFFFFF) throw new RangeError('LR_TEST_SEED must be an integer from 0 to 4294967295')
  return seed
}
