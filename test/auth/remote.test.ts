/**
 * A function deployed apart from auth (NEXUS_AUTH_JWKS_URL set) verifies access tokens through the auth
 * service's JWKS URL, on each runtime: logins, roles, forgeries, rotation and logout all carry over.
 */
import { rmSync } from 'node:fs'
import { decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FunctionSpec } from '../../workers.config.ts'
import { goodClaims, otherKeyPairToken, signWithServerKey, unsignedToken } from '../support/auth-forge.ts'
import {
  adminToken,
  bearer,
  createUser,
  expectEnvelope,
  login,
  loginAs,
  RUNTIMES,
  startTestHost,
  type TestHost,
} from '../support/harness.ts'

const probe: FunctionSpec = {
  name: 'test-auth-probe',
  file: 'test/fixtures/auth-probe.ts',
  group: 'cortex',
  routes: [
    { method: 'GET', path: '/test/whoami' },
    { method: 'GET', path: '/test/operators' },
  ],
  bindings: ['database', 'bus', 'jwks'],
  description: 'test fixture',
}

const poll = async <T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> => {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (ok(v) || Date.now() > end) return v
    await new Promise((r) => setTimeout(r, 250))
  }
}

for (const runtime of RUNTIMES) {
  describe(`auth deployed apart [${runtime}]`, () => {
    let auth: TestHost
    let apart: TestHost
    beforeAll(async () => {
      auth = await startTestHost(runtime, { groups: ['auth'] })
      // Same database schema (one NEXUS database), its own process and bus; keys only through the JWKS URL.
      apart = await startTestHost(runtime, {
        functions: ['health'],
        extraFunctions: [probe],
        keepData: true,
        env: {
          NEXUS_AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`,
          NEXUS_DB_SCHEMA: auth.schema,
          NEXUS_BUS_PREFIX: `${auth.schema}-apart:`,
        },
      })
    })
    afterAll(async () => {
      await apart?.close()
      if (apart) rmSync(apart.env.NEXUS_DATA_DIR!, { recursive: true, force: true })
      await auth?.close()
    })

    const whoami = (token: string) => apart.json('GET', '/test/whoami', undefined, bearer(token))

    it('accepts a token from the auth service and sets the user', async () => {
      const user = await createUser(auth, ['agent'])
      const token = await login(auth, user.username, user.password)
      const res = await whoami(token)
      expect(res.status).toBe(200)
      expect(res.body.user).toMatchObject({ sub: user.id, username: user.username, roles: ['agent'], kind: 'user' })
    })

    it('applies requireRole: 403 for a viewer, 200 for an operator and for an admin', async () => {
      expectEnvelope(await apart.json('GET', '/test/operators', undefined, bearer(await loginAs(auth, 'viewer'))), 403, 'FORBIDDEN')
      expect((await apart.json('GET', '/test/operators', undefined, bearer(await loginAs(auth, 'operator')))).status).toBe(200)
      expect((await apart.json('GET', '/test/operators', undefined, bearer(await adminToken(auth)))).status).toBe(200)
      expectEnvelope(await apart.json('GET', '/test/operators'), 401, 'UNAUTHORIZED')
    })

    it('rejects forged and expired tokens with 401', async () => {
      const kid = decodeProtectedHeader(await adminToken(auth)).kid!
      const now = Math.floor(Date.now() / 1000)
      expectEnvelope(await whoami(unsignedToken(kid)), 401, 'TOKEN_INVALID')
      expectEnvelope(await whoami(await otherKeyPairToken(kid)), 401, 'TOKEN_INVALID')
      expectEnvelope(await whoami(await signWithServerKey(auth, { claims: { ...goodClaims(), iat: now - 7200, exp: now - 3600 } })), 401, 'TOKEN_EXPIRED')
      expectEnvelope(await whoami(await signWithServerKey(auth, { claims: { aud: 'elsewhere' } })), 401, 'TOKEN_INVALID')
    })

    it('follows a rotation: tokens from the new key and from the old one both verify', async () => {
      const before = await login(auth, 'admin', 'test-admin-password-1')
      const res = await auth.json('POST', '/api/v1/auth/keys/rotate', undefined, bearer(await adminToken(auth)))
      expect(res.status).toBe(201)
      const after = await login(auth, 'admin', 'test-admin-password-1')
      expect(decodeProtectedHeader(after).kid).toBe(res.body.kid)
      expect((await whoami(before)).status).toBe(200)
      expect((await whoami(after)).status).toBe(200)
    })

    it('rejects a token logged out at the auth service (within the revocation sync interval)', async () => {
      const user = await createUser(auth, ['viewer'])
      const token = await login(auth, user.username, user.password)
      expect((await whoami(token)).status).toBe(200)
      expect((await auth.json('POST', '/api/v1/auth/logout', undefined, bearer(token))).status).toBe(204)
      const res = await poll(() => whoami(token), (r) => r.status === 401)
      expectEnvelope(res, 401, 'TOKEN_REVOKED')
    })
  })
}
