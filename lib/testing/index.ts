/** `fastify-lightroom-ims/testing`: mock servers for tests of apps built on the plugin. */
export { createMockIms } from './mock-ims.js'
export type {
  MockIms, MockImsClient, MockImsEndpoint, MockImsFault, MockImsIntrospection, MockImsOptions, MockImsUser
} from './mock-ims-types.js'
export { createMockLightroom } from './mock-lightroom.js'
export type {
  MockLightroom, MockLightroomEndpoint, MockLightroomEntitlement, MockLightroomFault, MockLightroomOptions,
  MockLightroomRequest, MockLightroomUser
} from './mock-lightroom-types.js'
