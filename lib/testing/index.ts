/** `fastify-lightroom-ims/testing`: mock servers for tests of apps built on the plugin. */
export { createMockIms } from './ims/server.js'
export type {
  MockIms, MockImsClient, MockImsEndpoint, MockImsFault, MockImsFaultTarget, MockImsIntrospection, MockImsOptions, MockImsUser
} from './ims/types.js'
export { createMockLightroom } from './lightroom/server.js'
export type {
  MockLightroom, MockLightroomEndpoint, MockLightroomEntitlement, MockLightroomFault, MockLightroomOptions,
  MockLightroomRequest, MockLightroomUser
} from './lightroom/types.js'
export { testingHooks } from './hooks.js'
export type { TestingHooks } from './hooks.js'
