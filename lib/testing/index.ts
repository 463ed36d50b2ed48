/** `fastify-lightroom-ims/testing`: mock servers for tests of apps built on the plugin. */
export { createMockIms } from './ims/server.js'
export type {
  MockIms, MockImsClient, MockImsEndpoint, MockImsFault, MockImsFaultTarget, MockImsIntrospection, MockImsOptions, MockImsUser
} from './ims/types.js'
export { createMockLightroom } from './lightroom/server.js'
export type {
  MockLightroom, MockLightroomEndpoint, MockLightroomEntitlement, MockLightroomFault, MockLightroomOptions,
  MockLightroomRequest, MockLightroomUser, MockLibrarySettings, MockLightroomLibrary, MockRenditionType
} from './lightroom/types.js'
export { testingHooks } from '../testing-hooks.js'
export type { TestingHooks } from '../testing-hooks.js'
export { signIn } from './sign-in.js'
export type { SignInOptions, SignedInSession } from './sign-in.js'
