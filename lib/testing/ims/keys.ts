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
  /** Under the published kid, with IMS's `x5u` file name in the header. */
  sign (payload: JWTPayload): Promise<string>
  /** Under a kid that is not in the JWKS, as IMS's access and refresh tokens are. */
  signUnpublished (payload: JWTPayload): Promise<string>
}

/** What IMS puts in its tokens' headers: a file name, not a URL. */
export const IMS_X5U = 'ims_na1-key-at-1.cer'
const UNPUBLISHED_KID = 'ims_na1-key-at-1'

let sharedKeys: ReturnType<typeof generateKeyPair> | undefined

export async function createSigner (): Promise<Signer> {
  sharedKeys ??= generateKeyPair('RS256')
  const { publicKey, privateKey } = await sharedKeys
  const kid = `mock-ims-${randomBytes(6).toString('hex')}`
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }
  return {
    jwks: { keys: [jwk] },
    async sign (payload) {
      return await new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT', x5u: IMS_X5U }).sign(privateKey)
    },
    async signUnpublished (payload) {
      return await new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: UNPUBLISHED_KID, typ: 'JWT', x5u: IMS_X5U }).sign(privateKey)
    }
  }
}
