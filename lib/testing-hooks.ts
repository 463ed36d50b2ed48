/**
 * Knobs for tests and benchmarks, kept out of the documented options: a fake clock, quick IMS and
 * Lightroom retries, short refresh locks. They are passed under a symbol key that only
 * `fastify-lightroom-ims/testing` exports, so no production config can set one by accident (a JSON
 * file cannot hold a symbol), and the options' type stays what users configure.
 */
export const testingHooks: unique symbol = Symbol('fastify-lightroom-ims.testing-hooks')

export interface TestingHooks {
  /** The clock the plugin reads (epoch ms); share it with the mock IMS to move time instead of waiting. */
  now?: () => number
  imsRetry?: { retries?: number, retryBaseDelayMs?: number, maxRetryDelayMs?: number }
  refreshLock?: { lockTtlMs?: number, waitForPeerMs?: number, pollIntervalMs?: number, failureCooldownMs?: number }
  lightroomRetry?: { retries?: number, retryBaseDelayMs?: number, maxRetryDelayMs?: number, sleep?: (ms: number) => Promise<void> }
}

/** Registration options as the plugin receives them: what users configure, plus the hooks. */
export interface WithTestingHooks {
  [testingHooks]?: TestingHooks | undefined
}
