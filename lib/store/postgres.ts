/**
 * PostgreSQL backend (pg 8) for deployments whose tokens must survive restarts, and for several
 * processes sharing tokens, sessions and refresh locks without a Redis.
 *
 *   import pg from 'pg'
 *   import { postgresBackend } from 'fastify-lightroom-ims/postgres'
 *   const pool = new pg.Pool({ connectionString })
 *   pool.on('error', (err) => log.warn({ err: err.message }, 'postgres'))   // required, see checkPool
 *   const backend = postgresBackend(pool)
 *   await backend.createTable()
 *   const store = encryptedStore(backend, { keys })
 *
 * Only `import type` from pg in these files: it is an optional peer dependency and apps that never
 * import this entry point must not need it installed.
 */
export { postgresBackend } from './postgres/backend.js'
export type { PostgresBackend, PostgresBackendOptions } from './postgres/backend.js'
export { PostgresBackendError } from './postgres/connection.js'
export type { PostgresBackendFailure } from './postgres/connection.js'
export { createTableSql } from './postgres/sql.js'
