/** `app.lightroom.reencryptAll()`: the store's re-encryption over the plugin's records, with its start and end logged. */
import type { FastifyBaseLogger } from 'fastify'
import type { BatchOptions, ReencryptReport } from '../batch/types.js'
import { LightroomBatchError } from '../errors.js'
import type { TokenStore } from './types.js'

export async function reencryptAll (store: TokenStore, prefixes: readonly string[], log: FastifyBaseLogger, options?: BatchOptions<ReencryptReport>): Promise<ReencryptReport> {
  log.info({ concurrency: options?.concurrency }, 'lightroom-ims: re-encryption run started')
  try {
    const report = await store.reencryptAll(prefixes, options)
    log.info(report, 'lightroom-ims: re-encryption run finished')
    return report
  } catch (error) {
    if (error instanceof LightroomBatchError) log.error({ report: error.report, err: { message: error.message } }, 'lightroom-ims: re-encryption run stopped by a failure')
    throw error
  }
}
