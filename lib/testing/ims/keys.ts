/**
 * The mock's RS256 signing key. Making an RSA key takes a few hundred
 * milliseconds, far too slow for suites that start a mock per test, so one
 * key pair is made per process and every mock gets its own `kid`: a token
 * from one mock still fails against another mock's JWKS, since verifiers
 * select the key by `kid`.
 */
import { randomBytes } from 'node:crypto'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { JWK, JWTPayload } from 'jose'

export interface Signer {
  readonly jwks: { keys: JWK[] }
  sign (payload: JWTPayload): Promise<string>
}

let sharedKeys: ReturnType<typeof generateKeyPair> | undefined

export async function createSigner (): Promise<Signer> {
  sharedKeys ??= generateKeyPair('RS256')
  const { publicKey, privateKey } = await sharedKeys
  const kid = `mock-ims-${randomBytes(6).toString('hex')}`
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }
  return {
    jwks: { keys: [jwk] },
    async sign (payload) {
      return await new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(privateKey)
    }
  }
}
