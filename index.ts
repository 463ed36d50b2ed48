export { lrImsPlugin, lrImsPlugin as default } from './lib/plugin.js'
export type { LightroomDecorator, TokenInfo } from './lib/types.js'
export type { LightroomImsOptions } from './lib/options.js'
export { DEFAULT_SCOPES, IMS_DISCOVERY_URL } from './lib/options.js'
export { encryptedStore, generateEncryptionKey, parseEncryptionKeys } from './lib/store/encrypted.js'
export { memoryBackend } from './lib/store/memory.js'
export type { StoreBackend, BackendLock, TokenStore, StoredValue, EncryptionKey, EncryptedStoreOptions } from './lib/store/types.js'
export {
  ErrorCodes, LightroomError, LightroomAuthError, LightroomConfigError, StoreRecordError, ImsError, LightroomApiError,
  LightroomNotEntitledError, LightroomAlreadyExistsError, LightroomInputError, LightroomBatchError, errorBody
} from './lib/errors.js'
export type { LightroomErrorCode, LightroomAuthErrorCode, LightroomApiClientCode, ErrorBody } from './lib/errors.js'
export type { TokenSet } from './lib/auth/token-set.js'
export type { GetOptions, RenewOptions, RenewReport, TokenEvents, RefreshReason } from './lib/auth/token-manager.js'
export type { BatchOptions, BatchOutcome, ReencryptReport } from './lib/batch/types.js'
export type { ProviderMetadata } from './lib/ims/discovery.js'
export { CHANNELS as diagnosticsChannels } from './lib/diagnostics/channels.js'
export type { SignInContext, RefreshContext, ImsRequestContext, LightroomRequestContext, StoreContext } from './lib/diagnostics/channels.js'
export {
  LightroomClient, isEntitled, LIGHTROOM_BASE_URL, RENDITION_TYPES, GENERATED_RENDITION_TYPES, MAX_PAGE_LIMIT
} from './lib/lightroom/client.js'
export type {
  LightroomClientOptions, AccessTokenOptions, AlbumsOptions, AlbumAssetsOptions, AssetsOptions, Rendition, RenditionOptions,
  GenerateOptions, UploadOptions, UploadResult, AddToAlbumResult, RenditionType, GeneratedRenditionType
} from './lib/lightroom/client.js'
export type * from './lib/lightroom/types.js'
