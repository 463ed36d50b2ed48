import { test } from 'tap'
import * as pkg from '../index.js'
import { RedisBackendError } from '../lib/store/redis.js'
import { PostgresBackendError } from '../lib/store/postgres.js'
import { ErrorCodes, ImsError, LightroomApiError, LightroomAuthError, LightroomBatchError, LightroomConfigError, LightroomError, StoreRecordError, errorBody } from '../index.js'

test('every error class is a LightroomError with a stable code from ErrorCodes and a status', async (t) => {
  const errors: Array<[LightroomError, string]> = [
    [new LightroomAuthError('LR_LOGIN_REQUIRED', 401, 'Sign in'), ErrorCodes.LOGIN_REQUIRED],
    [new LightroomConfigError('clientId', 'must be a string'), ErrorCodes.INVALID_OPTION],
    [new StoreRecordError('tokens:u', 'auth-failed'), ErrorCodes.STORE_CORRUPT],
    [new ImsError({ error: 'invalid_grant', status: 400, transient: false }), ErrorCodes.IMS_REQUEST_FAILED],
    [new LightroomApiError({ statusCode: 403, lightroomCode: '403003', path: '/v2/account', transient: false }), ErrorCodes.API_ERROR],
    [new RedisBackendError('timeout', 'GET timed out'), ErrorCodes.REDIS_UNAVAILABLE],
    [new PostgresBackendError('unavailable', 'the database is down'), ErrorCodes.POSTGRES_UNAVAILABLE],
    [new LightroomBatchError('renewExpiring', { renewed: 3 }, new RedisBackendError('timeout', 'GET timed out')), ErrorCodes.BATCH_INCOMPLETE]
  ]
  for (const [error, code] of errors) {
    t.ok(error instanceof LightroomError, `${error.name} is a LightroomError`)
    t.ok(error instanceof Error, `${error.name} is an Error`)
    t.equal(error.code, code, `${error.name} carries ${code}`)
    t.ok(Number.isInteger(error.statusCode) && error.statusCode >= 400, `${error.name} has an HTTP status`)
    t.equal(Object.prototype.toString.call(error), '[object Error]')
  }
  t.equal(new LightroomApiError({ statusCode: 404, lightroomCode: '1000', path: '/v2/catalog', transient: false }).lightroomCode, '1000', "Lightroom's own code stays readable")
})

test('ErrorCodes: frozen, every value an LR_ code, no two alike', async (t) => {
  t.ok(Object.isFrozen(ErrorCodes))
  const values = Object.values(ErrorCodes)
  t.equal(new Set(values).size, values.length)
  for (const value of values) t.match(value, /^LR_[A-Z_]+$/)
})

test('errorBody: the one JSON error shape, from our own message, with extra fields after', async (t) => {
  t.same(errorBody(new LightroomAuthError('LR_LOGIN_REQUIRED', 401, 'Sign in with Adobe to continue')), {
    statusCode: 401, code: 'LR_LOGIN_REQUIRED', error: 'Unauthorized', message: 'Sign in with Adobe to continue'
  })
  t.same(errorBody(new LightroomAuthError('LR_IMS_UNAVAILABLE', 503, 'later'), { loginUrl: '/auth/lightroom/login' }), {
    statusCode: 503, code: 'LR_IMS_UNAVAILABLE', error: 'Service Unavailable', message: 'later', loginUrl: '/auth/lightroom/login'
  })
  const reasons: Array<[number, string]> = [[400, 'Bad Request'], [403, 'Forbidden'], [404, 'Not Found'], [418, 'Bad Request'], [500, 'Internal Server Error'], [502, 'Bad Gateway'], [504, 'Error']]
  for (const [statusCode, reason] of reasons) {
    t.equal(errorBody({ statusCode, code: ErrorCodes.INTERNAL, message: 'm' }).error, reason, `${statusCode} → ${reason}`)
  }
  const cause = new Error('upstream said: secret-token-123')
  const body = errorBody(new LightroomAuthError('LR_IMS_ERROR', 502, 'Adobe refused', { cause }))
  t.notMatch(JSON.stringify(body), /secret-token-123/, 'the cause never reaches the body')
})

test('nothing test-only is exported from the package root', async (t) => {
  for (const name of ['testingHooks', 'createMockIms', 'createMockLightroom']) t.notOk(name in pkg, `${name} is not in index.ts`)
})
