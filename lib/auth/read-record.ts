/**
 * One record read the way the plugin's request path reads every record: its value (undefined when
 * absent), or "unreadable" for a record that cannot be decrypted (the caller decides what that
 * means for a session or a token set), and a store that cannot be reached as a 503.
 */
import { StoreRecordError, storeUnavailable } from '../errors.js'
import type { StoredRead, TokenStore } from '../store/types.js'

export async function readRecord (store: TokenStore, key: string): Promise<StoredRead<unknown>> {
  try {
    return { readable: true, stored: await store.get<unknown>(key) }
  } catch (error) {
    if (!(error instanceof StoreRecordError)) throw storeUnavailable(undefined, error)
    return { readable: false, error }
  }
}
