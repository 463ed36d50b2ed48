import { ErrorCodes, LightroomError } from '../../errors.js'

/**
 * not-ready: the connection (or, for a Cluster scan, one master's) is not up; timeout: no answer in
 * time; command-failed: Redis answered with an error; topology-changed: a Cluster's slots moved to
 * another master while a scan ran, so it may have missed records.
 */
export type RedisBackendFailure = 'not-ready' | 'timeout' | 'command-failed' | 'topology-changed'

/**
 * Every failure of this backend. The message names the operation and never
 * carries a key's value; ioredis's own errors are not attached as `cause`
 * because they carry the command's arguments (the ciphertext).
 */
export class RedisBackendError extends LightroomError {
  readonly code = ErrorCodes.REDIS_UNAVAILABLE
  /** The plugin answers a store it cannot reach with 503 (LR_STORE_UNAVAILABLE). */
  readonly statusCode = 503
  readonly reason: RedisBackendFailure

  constructor (reason: RedisBackendFailure, message: string) {
    super(message)
    this.name = 'RedisBackendError'
    this.reason = reason
  }
}
