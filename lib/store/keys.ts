/**
 * Encryption keys: made, parsed from an environment variable, validated and imported once at
 * start-up, so a typo fails there and no request pays for decoding.
 */
import { createSecretKey, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { LightroomConfigError } from '../errors.js'
import type { EncryptionKey } from './types.js'

export const KEY_BYTES = 32
export const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const HEX_KEY = /^[0-9A-Fa-f]{64}$/
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/

export interface ImportedKey {
  id: string
  secret: KeyObject
}

/** A fresh random key, base64: what to put after `id:` in the keys env var. */
export function generateEncryptionKey (): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

/**
 * Parses `id1:key1,id2:key2` (the first encrypts, all decrypt), as read from
 * an environment variable. Validates every entry so a typo fails at start-up.
 */
export function parseEncryptionKeys (text: string): EncryptionKey[] {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new LightroomConfigError('keys', 'is empty: expected "id:base64key[,id:base64key...]"')
  }
  const keys = text.split(',').map((entry, i): EncryptionKey => {
    const item = entry.trim()
    const colon = item.indexOf(':')
    if (colon === -1) {
      throw new LightroomConfigError(`keys[${i}]`, 'must look like "id:base64key"')
    }
    return { id: item.slice(0, colon).trim(), key: item.slice(colon + 1).trim() }
  })
  importKeys(keys)
  return keys
}

/**
 * Validates and imports every key once, so no request pays for decoding.
 * Messages name the option but never quote a key or an id: a key pasted into
 * the id field must not end up in a log.
 */
export function importKeys (keys: unknown): ImportedKey[] {
  if (typeof keys === 'string') {
    throw new LightroomConfigError('keys', 'is a string: parse "id:base64key,..." text with parseEncryptionKeys(), e.g. encryptedStore(backend, { keys: parseEncryptionKeys(process.env.TOKEN_KEYS) })')
  }
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new LightroomConfigError('keys', 'must be a non-empty array of { id, key }; the first one encrypts')
  }
  const seen = new Map<string, number>()
  return keys.map((entry: unknown, i): ImportedKey => {
    if (typeof entry === 'string') {
      // The usual slip: the environment variable's text passed as it is.
      throw new LightroomConfigError(`keys[${i}]`, 'is a string, not { id, key }: parse "id:base64key,..." text with parseEncryptionKeys(), e.g. encryptedStore(backend, { keys: parseEncryptionKeys(process.env.TOKEN_KEYS) })')
    }
    if (typeof entry !== 'object' || entry === null) {
      throw new LightroomConfigError(`keys[${i}]`, 'must be an object { id, key }')
    }
    const { id, key } = entry as Partial<EncryptionKey>
    if (typeof id !== 'string' || !KEY_ID.test(id)) {
      throw new LightroomConfigError(`keys[${i}].id`, 'must be 1 to 32 letters, digits, "-" or "_"')
    }
    const first = seen.get(id)
    if (first !== undefined) {
      throw new LightroomConfigError(`keys[${i}].id`, `must be unique: keys[${first}] has the same id`)
    }
    seen.set(id, i)
    return { id, secret: createSecretKey(keyBytes(key, `keys[${i}].key`)) }
  })
}

function keyBytes (key: unknown, option: string): Uint8Array {
  let bytes: Uint8Array
  if (key instanceof Uint8Array) {
    bytes = key
  } else if (typeof key === 'string' && HEX_KEY.test(key)) {
    bytes = Buffer.from(key, 'hex')
  } else if (typeof key === 'string' && BASE64.test(key)) {
    // Node's base64 decoder accepts both alphabets, padded or not.
    bytes = Buffer.from(key, 'base64')
  } else {
    throw new LightroomConfigError(option, `must be ${KEY_BYTES} bytes: a Buffer, a Uint8Array, or a base64, base64url or 64-hex-character string (generateEncryptionKey() makes one)`)
  }
  if (bytes.length !== KEY_BYTES) {
    throw new LightroomConfigError(option, `must be exactly ${KEY_BYTES} bytes for AES-256; got ${bytes.length}`)
  }
  return bytes
}
