/**
 * POST /api/v1/auth/verify and requireAuth (through GET /api/v1/auth/me) on each runtime: good tokens
 * pass; every forged, altered, expired, mis-addressed, unknown-key or revoked token is a 401 in the envelope.
 */
import { decodeProtectedHeader } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  goodClaims,
  hs256WithPublicKey,
  otherKeyPairToken,
  payloadOf,
  signWithServerKey,
  tamperedToken,
  unsignedToken,
} from '../support/auth-forge.ts'
import { bearer, createUser, describeRuntimes, expectEnvelope, login, type TestHost } from '../support/harness.ts'

const now = () => Math.floor(Date.now() / 1000)

// Only the auth functions: a workerd host then bundles and starts far fewer workers.
const AUTH_ONLY = { groups: ['auth' as const] }

describeRuntimes('token verification', (host) => {
  let token: string
  let sub: string
  let kid: string
  let jwks: { keys: Array<Record<string, string>> }

  beforeAll(async () => {
    const user = await createUser(host(), ['operator'])
    token = await login(host(), user.username, user.password)
    sub = user.id
    kid = decodeProtectedHeader(token).kid!
    jwks = (await host().json('GET', '/.well-known/jwks.json')).body
  })

  const verifyBody = (h: TestHost, t: string) => h.json('POST', '/api/v1/auth/verify', { token: t })
  const verifyBearer = (h: TestHost, t: string) => h.json('POST', '/api/v1/auth/verify', undefined, bearer(t))
  const me = (h: TestHost, t: string) => h.json('GET', '/api/v1/auth/me', undefined, bearer(t))

  describe('happy', () => {
    it('accepts the token in the body and as Bearer, and returns its claims', async () => {
      for (const res of [await verifyBody(host(), token), await verifyBearer(host(), token)]) {
        expect(res.status).toBe(200)
        expect(res.body).toEqual({
          valid: true,
          claims: {
            iss: 'nexus',
            aud: 'nexus',
            sub,
            username: expect.stringMatching(/^operator-/),
            roles: ['operator'],
            jti: expect.any(String),
            iat: expect.any(Number),
            exp: expect.any(Number),
          },
        })
      }
    })

    it('lets requireAuth through and sets the user (GET /api/v1/auth/me)', async () => {
      const res = await me(host(), token)
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({ id: sub, roles: ['operator'] })
    })

    it('accepts a token signed with the server key when every check holds (so the cases below fail for their reason)', async () => {
      const t = await signWithServerKey(host(), { claims: { sub } })
      expect((await verifyBody(host(), t)).status).toBe(200)
    })
  })

  describe('error', () => {
    it('answers no token with 401 UNAUTHORIZED and WWW-Authenticate: Bearer', async () => {
      const res = await host().json('POST', '/api/v1/auth/verify')
      expectEnvelope(res, 401, 'UNAUTHORIZED')
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
      expectEnvelope(await host().json('GET', '/api/v1/auth/me'), 401, 'UNAUTHORIZED')
    })

    it('answers a non-Bearer Authorization header with 401', async () => {
      const res = await host().json('GET', '/api/v1/auth/me', undefined, { authorization: `Basic ${btoa('admin:x')}` })
      expectEnvelope(res, 401, 'TOKEN_INVALID')
    })

    it('answers garbage with 401 TOKEN_INVALID', async () => {
      for (const t of ['not-a-jwt', 'a.b.c', 'eyJhbGciOiJSUzI1NiJ9..', 'x'.repeat(10_000)])
        expectEnvelope(await verifyBody(host(), t), 401, 'TOKEN_INVALID')
    })

    it('answers a malformed body with 400, a wrong content type with 415, a bad field with 400', async () => {
      expectEnvelope(await host().json('POST', '/api/v1/auth/verify', '{"token":'), 400, 'INVALID_JSON')
      expectEnvelope(await host().json('POST', '/api/v1/auth/verify', token, { 'content-type': 'text/plain' }), 415)
      expectEnvelope(await host().json('POST', '/api/v1/auth/verify', { token: 42 }), 400, 'VALIDATION_FAILED')
    })
  })

  describe('security: rejected everywhere with 401', () => {
    // Each case builds its token in the test, so the host is up; [name, build, code, what the message names].
    // The message check proves each token fails for its own reason, not for an earlier one.
    const cases: Array<[string, (h: TestHost) => Promise<string> | string, string, RegExp]> = [
      ['alg: none', () => unsignedToken(kid, goodClaims(sub)), 'TOKEN_INVALID', /RS256/],
      ['HS256 keyed with the RSA public key (algorithm confusion)', () => hs256WithPublicKey(jwks, goodClaims(sub)), 'TOKEN_INVALID', /RS256/],
      ['a tampered payload', () => tamperedToken(token), 'TOKEN_INVALID', /signature/],
      ['a tampered payload extending exp', () => tamperedToken(token, (c) => ({ ...c, exp: c.exp! + 3600 })), 'TOKEN_INVALID', /signature/],
      ['an expired token', (h) => signWithServerKey(h, { claims: { sub, iat: now() - 7200, exp: now() - 3600 } }), 'TOKEN_EXPIRED', /expired/],
      ['a wrong iss', (h) => signWithServerKey(h, { claims: { sub, iss: 'someone-else' } }), 'TOKEN_INVALID', /"iss"/],
      ['a wrong aud', (h) => signWithServerKey(h, { claims: { sub, aud: 'other-service' } }), 'TOKEN_INVALID', /"aud"/],
      ['no jti', (h) => signWithServerKey(h, { claims: { sub, jti: undefined } }), 'TOKEN_INVALID', /"jti"/],
      ['roles that do not exist', (h) => signWithServerKey(h, { claims: { sub, roles: ['root'] } }), 'TOKEN_INVALID', /NEXUS claims/],
      ['no typ at+jwt (another kind of JWT)', (h) => signWithServerKey(h, { header: { typ: 'JWT' } }), 'TOKEN_INVALID', /typ/],
      ['an unknown kid', (h) => signWithServerKey(h, { header: { kid: 'no-such-key-anywhere' } }), 'TOKEN_INVALID', /unknown key/],
      ['a kid with a path in it', (h) => signWithServerKey(h, { header: { kid: '../../etc/passwd' } }), 'TOKEN_INVALID', /key id/],
      ['a kid with SQL in it', (h) => signWithServerKey(h, { header: { kid: "x' or 1=1--" } }), 'TOKEN_INVALID', /key id/],
      ['no kid', (h) => signWithServerKey(h, { header: { kid: undefined } }), 'TOKEN_INVALID', /key id/],
      ['another key pair, claiming the real kid', () => otherKeyPairToken(kid, goodClaims(sub)), 'TOKEN_INVALID', /signature/],
      ['another key pair, with its own kid', () => otherKeyPairToken('attacker-key', goodClaims(sub)), 'TOKEN_INVALID', /unknown key/],
    ]

    it.each(cases)('%s', async (_name, build, code, reason) => {
      const bad = await build(host())
      for (const res of [await verifyBody(host(), bad), await verifyBearer(host(), bad), await me(host(), bad)]) {
        expect(expectEnvelope(res, 401, code).message).toMatch(reason)
        expect(res.body.error.type).toBe('authentication_error')
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
      }
    })

    it('a revoked token (logged out) is rejected by verify and by requireAuth', async () => {
      const user = await createUser(host(), ['viewer'])
      const t = await login(host(), user.username, user.password)
      expect((await me(host(), t)).status).toBe(200)
      expect((await host().json('POST', '/api/v1/auth/logout', undefined, bearer(t))).status).toBe(204)
      for (const res of [await verifyBody(host(), t), await verifyBearer(host(), t), await me(host(), t)])
        expectEnvelope(res, 401, 'TOKEN_REVOKED')
      expect(payloadOf(t).jti).toBeTruthy()
    })
  })
}, AUTH_ONLY)
