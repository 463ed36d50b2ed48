/**
 * The server side of a sign-in flow: GET /login stores a short-lived record keyed by a hash of the
 * OAuth state, and the callback consumes it atomically before any call to IMS. A flow-cookie pair
 * is therefore good for one code exchange, however often it is replayed, and only within the
 * record's life. The record also keeps the OpenID nonce, which never reaches a cookie.
 */
import { createHash, randomBytes } from 'node:crypto'
import { storeUnavailable } from '../errors.js'
import type { StoredValue, TokenStore } from '../store/types.js'

export const FLOW_PREFIX = 'flow:'
/** As long as the flow cookies: a sign-in that takes longer fails anyway (IMS codes live 5 minutes). */
export const FLOW_TTL_MS = 600_000

export interface FlowRecord {
  nonce: string
  createdAt: number
}

function flowKey (state: string): string {
  return `${FLOW_PREFIX}${createHash('sha256').update(state).digest('base64url')}`
}

export class FlowRecords {
  readonly #store: TokenStore
  readonly #now: () => number

  constructor (store: TokenStore, now: () => number) {
    this.#store = store
    this.#now = now
  }

  async start (state: string): Promise<FlowRecord> {
    const record: FlowRecord = { nonce: randomBytes(24).toString('base64url'), createdAt: this.#now() }
    try {
      await this.#store.set(flowKey(state), record, FLOW_TTL_MS)
    } catch (error) {
      throw storeUnavailable(undefined, error)
    }
    return record
  }

  /** The flow's record, removed in the same step; undefined when used already, expired or never started. */
  async consume (state: string): Promise<FlowRecord | undefined> {
    const key = flowKey(state)
    let stored: StoredValue<FlowRecord> | undefined
    try {
      stored = await this.#store.get<FlowRecord>(key)
      // Only the caller whose delete removed it may go on: two concurrent replays cannot both win.
      if (stored === undefined || !(await this.#store.compareAndDelete(key, stored.revision))) return undefined
    } catch (error) {
      // An undecryptable flow record is no flow; an unreachable store is a 503.
      if ((error as { code?: string }).code === 'LR_STORE_CORRUPT') return undefined
      throw storeUnavailable(undefined, error)
    }
    const { nonce, createdAt } = stored.value
    if (typeof nonce !== 'string' || typeof createdAt !== 'number' || this.#now() - createdAt > FLOW_TTL_MS) return undefined
    return stored.value
  }
}
