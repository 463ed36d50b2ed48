// Store corruption over the memory backend: test/helpers/store-corruption.ts.
import { memoryBackend } from '../index.js'
import { storeCorruptionSuite } from './helpers/store-corruption.js'

storeCorruptionSuite({ backend: async () => memoryBackend() })
