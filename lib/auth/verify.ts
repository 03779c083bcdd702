/**
 * Access-token verification shared by requireAuth, POST /api/v1/auth/verify and the gateway: RS256
 * pinned, `typ`, `iss`, `aud`, `exp` and the required claims checked by jose, then revocation.
 *
 * Keys come from a key set cached per process or isolate: loaded from `signing_keys` (or, for a function
 * deployed apart, from NEXUS_AUTH_JWKS_URL), at most {@link KEY_SET_MAX_AGE_MS} old, refreshed at once on
 * a rotation event, and on an unknown kid at most once per {@link KEY_SET_COOLDOWN_MS}. A token that
 * verified is remembered (bounded, {@link VERIFIED_CACHE_MAX}): its next uses skip the signature check but
 * not expiry, key presence or revocation.
 */
import { decodeProtectedHeader, errors, importJWK, jwtVerify, type JWK, type JWTPayload, type JWTVerifyOptions } from 'jose'
import { ApiError } from '../errors.ts'
import type { Services } from '../services.ts'
import { onAuthEvent } from './events.ts'
import { CLOCK_TOLERANCE_SECONDS, KID_PATTERN, publicKeys } from './keys.ts'
import { isRevoked } from './revocation.ts'
import { isLongLived, scopedState } from '../state.ts'
import { isRole, type AccessTokenClaims, type AuthUser, type Role } from './types.ts'

export const KEY_SET_MAX_AGE_MS = 60_000
export const KEY_SET_COOLDOWN_MS = 10_000
/** Longer tokens are refused unread: ours are about 800 bytes. */
export const MAX_TOKEN_LENGTH = 8_192
export const ACCESS_TOKEN_TYPE = 'at+jwt'
const JWKS_FETCH_TIMEOUT_MS = 5_000
/** Tokens whose signature and claims were verified, kept per process or isolate (least recently used out). */
export const VERIFIED_CACHE_MAX = 10_000

interface KeySet {
  keys: Map<string, CryptoKey>
  /** ms; 0 = never loaded or invalidated */
  loadedAt: number
  /** ms of the last load attempt, the cooldown's clock */
  triedAt: number
  pending?: Promise<void>
}

const keySetOf = (services: Services) =>
  scopedState<KeySet>(services, 'key-set', () => ({ keys: new Map(), loadedAt: 0, triedAt: 0 }))

onAuthEvent((services, event) => {
  if (event.type === 'key_rotated') keySetOf(services).loadedAt = 0
})

interface Verified {
  claims: AccessTokenClaims
  kid: string
}
/**
 * A token that verified once verifies again byte for byte, so the RSA check is not redone per request.
 * What can change is rechecked on every use: expiry, that its key is still in the key set (a retired
 * key drops its tokens), and revocation.
 */
const verifiedOf = (services: Services) => scopedState(services, 'verified-tokens', () => new Map<string, Verified>())

const invalid = (message: string, code: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED' = 'TOKEN_INVALID') =>
  new ApiError(401, code, message, { headers: { 'www-authenticate': `Bearer error="invalid_token"` } })

/** Fetches the JWKS of the auth service (a function deployed apart). Only RS256 signing keys are kept. */
const fetchRemoteKeys = async (url: string): Promise<JWK[]> => {
  const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS) })
  if (!res.ok) {
    await res.body?.cancel()
    throw new Error(`JWKS fetch answered ${res.status}`)
  }
  const body = (await res.json()) as { keys?: unknown }
  if (!Array.isArray(body.keys)) throw new Error('JWKS response has no "keys" array')
  return body.keys.filter(
    (k): k is JWK =>
      typeof k === 'object' && k !== null && (k as JWK).kty === 'RSA' && ((k as JWK).alg ?? 'RS256') === 'RS256' &&
      ((k as JWK).use ?? 'sig') === 'sig' && typeof (k as JWK).kid === 'string' && KID_PATTERN.test((k as JWK).kid!),
  )
}

const load = async (services: Services, set: KeySet): Promise<void> => {
  set.triedAt = Date.now()
  const url = services.config.NEXUS_AUTH_JWKS_URL
  const jwks: JWK[] = url ? await fetchRemoteKeys(url) : await publicKeys(services)
  const keys = new Map<string, CryptoKey>()
  for (const jwk of jwks) {
    const kid = jwk.kid!
    // Keys already imported are reused: importing is the costly part.
    keys.set(kid, set.keys.get(kid) ?? ((await importJWK({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'RS256')) as CryptoKey))
  }
  set.keys = keys
  set.loadedAt = Date.now()
}

const reload = async (services: Services, set: KeySet): Promise<void> => {
  try {
    // On a long-lived host concurrent callers share one load; per request (workerd) each loads its own,
    // as a pending promise must not cross requests there.
    if (isLongLived(services)) await (set.pending ??= load(services, set).finally(() => (set.pending = undefined)))
    else await load(services, set)
  } catch (err) {
    // Stale keys beat no keys: keep verifying with what we have, and say so.
    if (set.keys.size === 0) {
      if (services.config.NEXUS_AUTH_JWKS_URL)
        throw new ApiError(503, 'UPSTREAM_UNAVAILABLE', "The auth service's key set (NEXUS_AUTH_JWKS_URL) is unreachable", {
          cause: err,
        })
      throw err
    }
    services.log.warn('could not refresh the signing key set; using the cached one', { err })
  }
}

/** The verification key for `kid`, or undefined when no key set has it. */
const keyFor = async (services: Services, kid: string): Promise<CryptoKey | undefined> => {
  const set = keySetOf(services)
  const now = Date.now()
  // Stale: reload, unless a reload just failed (then the cached keys serve until the cooldown passes,
  // rather than every request waiting on a database or JWKS URL that is down). With no keys at all, try.
  const stale = now - set.loadedAt > KEY_SET_MAX_AGE_MS
  if (set.keys.size === 0 || (stale && now - set.triedAt >= KEY_SET_COOLDOWN_MS)) await reload(services, set)
  const key = set.keys.get(kid)
  if (key) return key
  // An unknown kid: maybe a key rotated in since the last load. Look again, but not more often than the
  // cooldown, so made-up kids cannot turn every request into a key-set load.
  if (Date.now() - set.triedAt < KEY_SET_COOLDOWN_MS) return undefined
  await reload(services, set)
  return set.keys.get(kid)
}

/** The jose options every NEXUS verifier uses; exported so benchmarks and outside checks use the same. */
export const verifyOptions = (services: Services): JWTVerifyOptions => ({
  algorithms: ['RS256'],
  issuer: services.config.NEXUS_JWT_ISSUER,
  audience: services.config.NEXUS_JWT_AUDIENCE,
  typ: ACCESS_TOKEN_TYPE,
  requiredClaims: ['iss', 'aud', 'sub', 'jti', 'iat', 'exp'],
  clockTolerance: CLOCK_TOLERANCE_SECONDS,
})

const claimsOf = (payload: JWTPayload): AccessTokenClaims | undefined => {
  const { iss, aud, sub, jti, iat, exp } = payload
  const username = payload.username
  const roles = payload.roles
  if (typeof username !== 'string' || !Array.isArray(roles) || !roles.every(isRole)) return undefined
  if (typeof sub !== 'string' || typeof jti !== 'string' || typeof iat !== 'number' || typeof exp !== 'number') return undefined
  if (typeof iss !== 'string' || typeof aud !== 'string') return undefined
  return { iss, aud, sub, username, roles: roles as Role[], jti, iat, exp }
}

/**
 * Verifies an access token and returns its claims. Throws ApiError 401 `TOKEN_INVALID`, `TOKEN_EXPIRED`
 * or `TOKEN_REVOKED`; 503 when no key set can be loaded at all.
 */
export const verifyAccessTokenClaims = async (
  services: Services,
  token: string,
  options: { cache?: boolean } = {},
): Promise<AccessTokenClaims> => {
  if (token.length > MAX_TOKEN_LENGTH) throw invalid('The access token is too long')
  const cache = options.cache === false ? undefined : verifiedOf(services)
  const hit = cache?.get(token)
  if (hit && cache) {
    cache.delete(token)
    // jose's rule: expired once exp <= now - tolerance.
    if (hit.claims.exp <= Date.now() / 1000 - CLOCK_TOLERANCE_SECONDS) throw invalid('The access token has expired', 'TOKEN_EXPIRED')
    if (await keyFor(services, hit.kid)) {
      if (await isRevoked(services, hit.claims.jti, hit.claims.exp)) throw invalid('The access token has been revoked', 'TOKEN_REVOKED')
      cache.set(token, hit) // most recently used last
      return hit.claims
    }
    // Its key left the key set: verify from scratch (which refuses it).
  }
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(token)
  } catch {
    throw invalid('The access token is not a well-formed JWT')
  }
  // RS256 only: refuses `none`, and HS256 keyed with the public key (algorithm confusion), before any key work.
  if (header.alg !== 'RS256') throw invalid('The access token is not signed with RS256')
  if (typeof header.kid !== 'string' || !KID_PATTERN.test(header.kid)) throw invalid('The access token has no valid key id')
  const key = await keyFor(services, header.kid)
  if (!key) throw invalid('The access token was signed with an unknown key')
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(token, key, verifyOptions(services)))
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw invalid('The access token has expired', 'TOKEN_EXPIRED')
    if (err instanceof errors.JWTClaimValidationFailed) throw invalid(`The access token's "${err.claim}" claim is not accepted`)
    if (err instanceof errors.JWSSignatureVerificationFailed) throw invalid('The access token signature does not verify')
    if (err instanceof errors.JOSEError) throw invalid('The access token is invalid')
    throw err
  }
  const claims = claimsOf(payload)
  if (!claims) throw invalid('The access token lacks the NEXUS claims')
  if (await isRevoked(services, claims.jti, claims.exp)) throw invalid('The access token has been revoked', 'TOKEN_REVOKED')
  if (cache) {
    cache.set(token, { claims, kid: header.kid })
    if (cache.size > VERIFIED_CACHE_MAX) cache.delete(cache.keys().next().value!)
  }
  return claims
}

/** Verifies an access token as {@link verifyAccessTokenClaims} does and returns who it speaks for. */
export const verifyAccessToken = async (services: Services, token: string, options: { cache?: boolean } = {}): Promise<AuthUser> => {
  const c = await verifyAccessTokenClaims(services, token, options)
  return { sub: c.sub, username: c.username, roles: c.roles, jti: c.jti, exp: c.exp, kind: 'user' }
}
