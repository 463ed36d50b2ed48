/**
 * Where each endpoint lives, per flavor, and the discovery document that says
 * so. The IMS flavor copies IMS's oddity: the issuer is the bare host while the
 * document lives under `/ims`, and it does not list PKCE methods.
 */
import type { MockImsEndpoint } from './types.js'

export type EndpointPaths = Record<MockImsEndpoint, string>

const GENERIC_REALM = '/realms/test'

export function issuerPath (flavor: 'ims' | 'generic'): string {
  return flavor === 'ims' ? '' : GENERIC_REALM
}

export function endpointPaths (flavor: 'ims' | 'generic'): EndpointPaths {
  if (flavor === 'ims') {
    return {
      discovery: '/ims/.well-known/openid-configuration',
      authorize: '/ims/authorize/v2',
      token: '/ims/token/v3',
      userinfo: '/ims/userinfo/v2',
      revoke: '/ims/revoke',
      keys: '/ims/keys',
      logout: '/ims/logout/v1'
    }
  }
  const oidc = `${GENERIC_REALM}/protocol/openid-connect`
  return {
    discovery: `${GENERIC_REALM}/.well-known/openid-configuration`,
    authorize: `${oidc}/auth`,
    token: `${oidc}/token`,
    userinfo: `${oidc}/userinfo`,
    revoke: `${oidc}/revoke`,
    keys: `${oidc}/certs`,
    logout: `${oidc}/logout`
  }
}

export function discoveryDocument (
  flavor: 'ims' | 'generic',
  origin: string,
  issuer: string,
  paths: EndpointPaths,
  scopes: string[]
): Record<string, unknown> {
  const authMethods = ['client_secret_basic', 'client_secret_post']
  return {
    issuer,
    authorization_endpoint: origin + paths.authorize,
    token_endpoint: origin + paths.token,
    userinfo_endpoint: origin + paths.userinfo,
    revocation_endpoint: origin + paths.revoke,
    jwks_uri: origin + paths.keys,
    end_session_endpoint: origin + paths.logout,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_methods_supported: authMethods,
    scopes_supported: [...scopes],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'name', 'given_name', 'family_name', 'email', 'email_verified'],
    ...(flavor === 'generic' ? { code_challenge_methods_supported: ['S256', 'plain'] } : {})
  }
}
