/** JWKS (both paths), POST /api/v1/auth/keys/rotate and GET /api/v1/auth/health on each runtime. */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { withSql } from '../support/auth-forge.ts'
import { adminToken, bearer, createUser, describeRuntimes, expectEnvelope, login, loginAs } from '../support/harness.ts'

type Jwks = { keys: Array<Record<string, string>> }

// Only the auth functions: a workerd host then bundles and starts far fewer workers.
const AUTH_ONLY = { groups: ['auth' as const] }

describeRuntimes('signing keys', (host) => {
  const jwks = async (path = '/.well-known/jwks.json') => {
    const res = await host().json('GET', path)
    expect(res.status).toBe(200)
    return res as typeof res & { body: Jwks }
  }
  const kids = async (): Promise<string[]> => (await jwks()).body.keys.map((k: Record<string, string>) => k.kid!)

  describe('JWKS', () => {
    it('serves the same RFC 7517 set at both paths, public and cacheable for 300 s', async () => {
      const a = await jwks('/.well-known/jwks.json')
      const b = await jwks('/api/v1/auth/.well-known/jwks.json')
      expect(a.body).toEqual(b.body)
      for (const res of [a, b]) {
        expect(res.headers.get('cache-control')).toBe('public, max-age=300')
        expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      }
      expect(a.body.keys.length).toBeGreaterThanOrEqual(2) // the active key and the published next one
      for (const key of a.body.keys) {
        expect(Object.keys(key).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use'])
        expect(key).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256', e: 'AQAB' })
        expect(key.kid).toMatch(/^[A-Za-z0-9_-]{1,64}$/)
        expect(Buffer.from(key.n!, 'base64url').byteLength * 8).toBeGreaterThanOrEqual(2048)
      }
    })

    it('never contains private key material', async () => {
      const { text } = await jwks()
      for (const field of ['"d"', '"p"', '"q"', '"dp"', '"dq"', '"qi"', 'private']) expect(text).not.toContain(field)
    })

    it('lists the signing key first', async () => {
      const token = await login(host(), 'admin', 'test-admin-password-1')
      expect((await kids())[0]).toBe(decodeProtectedHeader(token).kid)
    })
  })

  describe('rotation', () => {
    it('signs new tokens with the new kid; tokens from before keep verifying; the old key stays published', async () => {
      const before = await login(host(), 'admin', 'test-admin-password-1')
      const oldKid = decodeProtectedHeader(before).kid!
      const published = await kids()

      const res = await host().json('POST', '/api/v1/auth/keys/rotate', undefined, bearer(await adminToken(host())))
      expect(res.status).toBe(201)
      expect(res.body).toEqual({ kid: expect.stringMatching(/^[A-Za-z0-9_-]{1,64}$/) })
      const newKid: string = res.body.kid
      expect(newKid).not.toBe(oldKid)
      // Pre-published: clients that cached the JWKS before the rotation already know the new key.
      expect(published).toContain(newKid)

      const after = await login(host(), 'admin', 'test-admin-password-1')
      expect(decodeProtectedHeader(after).kid).toBe(newKid)

      const now = await kids()
      expect(now[0]).toBe(newKid)
      expect(now).toContain(oldKid)
      expect(now.length).toBe(3) // new active, new next, old passive

      for (const token of [before, after]) {
        expect((await host().json('POST', '/api/v1/auth/verify', { token })).status).toBe(200)
        expect((await host().json('GET', '/api/v1/auth/me', undefined, bearer(token))).status).toBe(200)
        const outside = createRemoteJWKSet(new URL('/.well-known/jwks.json', host().url))
        await expect(jwtVerify(token, outside, { issuer: 'nexus', audience: 'nexus', algorithms: ['RS256'] })).resolves.toBeTruthy()
      }
    })

    it('only an admin may rotate: 403 for an operator or a viewer, 401 without a token', async () => {
      for (const role of ['operator', 'viewer'] as const) {
        const res = await host().json('POST', '/api/v1/auth/keys/rotate', undefined, bearer(await loginAs(host(), role)))
        expectEnvelope(res, 403, 'FORBIDDEN')
        expect(res.body.error.type).toBe('permission_error')
      }
      expectEnvelope(await host().json('POST', '/api/v1/auth/keys/rotate'), 401, 'UNAUTHORIZED')
    })

    it('keeps exactly one active key', async () => {
      const [{ n }] = (await withSql(host(), (sql, t) =>
        sql.unsafe(`select count(*)::int as n from ${t('signing_keys')} where status = 'active'`),
      )) as unknown as [{ n: number }]
      expect(n).toBe(1)
    })

    it('never stores a private key in the clear', async () => {
      const rows = await withSql(host(), (sql, t) => sql.unsafe(`select private_key from ${t('signing_keys')} where private_key <> ''`))
      expect(rows.length).toBeGreaterThanOrEqual(2)
      for (const r of rows) {
        expect(r.private_key).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
        expect(r.private_key).not.toMatch(/"d"|"p"|"q"/)
      }
    })
  })

  describe('health', () => {
    it('GET /api/v1/auth/health reports the database, the bus and the active kid', async () => {
      const res = await host().json('GET', '/api/v1/auth/health')
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({
        status: 'ok',
        checks: { database: { status: 'ok' }, redis: { status: 'ok' }, signing_key: { status: 'ok', kid: (await kids())[0] } },
      })
    })

    it('is public, and a viewer token does not change it', async () => {
      const user = await createUser(host(), ['viewer'])
      const token = await login(host(), user.username, user.password)
      expect((await host().json('GET', '/api/v1/auth/health', undefined, bearer(token))).status).toBe(200)
    })
  })

  // Last: it ends the old key's window, which invalidates tokens it signed (the cached admin token among them).
  describe('end of the window', () => {
    it('keeps the old key verifying for the token lifetime plus the JWKS cache time, then drops it', async () => {
      const rows = await withSql(host(), (sql, t) =>
        sql.unsafe(
          `select kid, status, extract(epoch from verify_until - rotated_at)::int as window from ${t('signing_keys')} where status <> 'active' and verify_until is not null`,
        ),
      )
      expect(rows.length).toBeGreaterThanOrEqual(1)
      for (const r of rows) expect(Number(r.window)).toBe(86400 + 300 + 5)
      // Move the window into the past: the key leaves the JWKS.
      const old = rows[0]!.kid as string
      await withSql(host(), (sql, t) =>
        sql.unsafe(`update ${t('signing_keys')} set verify_until = now() - interval '1 second' where kid = $1`, [old]),
      )
      expect(await kids()).not.toContain(old)
    })
  })
}, AUTH_ONLY)
