/** `fastify-lightroom-ims/testing`: mock servers for tests of apps built on the plugin. */
export { createMockIms } from './mock-ims.js'
export type {
  MockIms, MockImsClient, MockImsEndpoint, MockImsFault, MockImsIntrospection, MockImsOptions, MockImsUser
} from './mock-ims-types.js'
