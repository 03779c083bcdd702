/** POST /api/v1/auth/login on each runtime: tokens an outside service accepts, errors in the envelope, CORS. */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  bearer,
  createUser,
  describeRuntimes,
  expectEnvelope,
  TEST_ADMIN_PASSWORD,
  TEST_ADMIN_USERNAME,
} from '../support/harness.ts'
import { withSql } from '../support/auth-forge.ts'

const ORIGIN = 'https://console.nexus.example'

describeRuntimes(
  'POST /api/v1/auth/login',
  (host) => {
    describe('happy', () => {
      it('returns a Bearer token that verifies through the JWKS URL, as an outside service would, with every claim', async () => {
        const before = Math.floor(Date.now() / 1000)
        const res = await host().json('POST', '/api/v1/auth/login', { username: TEST_ADMIN_USERNAME, password: TEST_ADMIN_PASSWORD })
        expect(res.status).toBe(200)
        expect(res.headers.get('cache-control')).toBe('no-store')
        expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 86400 })
        const token: string = res.body.access_token

        for (const path of ['/.well-known/jwks.json', '/api/v1/auth/.well-known/jwks.json']) {
          const jwks = createRemoteJWKSet(new URL(path, host().url))
          const { payload, protectedHeader } = await jwtVerify(token, jwks, {
            issuer: 'nexus',
            audience: 'nexus',
            algorithms: ['RS256'],
          })
          expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), typ: 'at+jwt' })
          expect(payload).toMatchObject({
            iss: 'nexus',
            aud: 'nexus',
            sub: expect.stringMatching(/^[0-9a-f-]{36}$/),
            username: TEST_ADMIN_USERNAME,
            roles: ['admin'],
            jti: expect.any(String),
          })
          expect(payload.iat).toBeGreaterThanOrEqual(before - 1)
          expect(payload.exp! - payload.iat!).toBe(86400)
        }
      })

      it('records the session in human_sessions with its kid and expiry', async () => {
        const user = await createUser(host(), ['operator'])
        const res = await host().json('POST', '/api/v1/auth/login', { username: user.username, password: user.password })
        expect(res.status).toBe(200)
        const { kid } = decodeProtectedHeader(res.body.access_token)
        const [, payloadPart] = (res.body.access_token as string).split('.')
        const { jti, exp } = JSON.parse(Buffer.from(payloadPart!, 'base64url').toString())
        const rows = await withSql(host(), (sql, t) =>
          sql.unsafe(`select user_id::text, kid, extract(epoch from expires_at)::int8 as exp, revoked_at, client_ip from ${t('human_sessions')} where jti = $1`, [jti]),
        )
        expect(rows).toHaveLength(1)
        expect(rows[0]).toMatchObject({ user_id: user.id, kid, revoked_at: null })
        expect(Number(rows[0]!.exp)).toBe(exp)
        expect(rows[0]!.client_ip).toMatch(/127\.0\.0\.1|::1|unknown/)
      })

      it('answers a CORS preflight and the login itself for an allowed origin only', async () => {
        const pre = await host().fetch('/api/v1/auth/login', {
          method: 'OPTIONS',
          headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
        })
        expect(pre.status).toBe(204)
        expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN)
        expect(pre.headers.get('access-control-allow-methods')).toMatch(/POST/)
        const res = await host().json(
          'POST',
          '/api/v1/auth/login',
          { username: TEST_ADMIN_USERNAME, password: TEST_ADMIN_PASSWORD },
          { origin: ORIGIN },
        )
        expect(res.status).toBe(200)
        expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN)
        const other = await host().json('POST', '/api/v1/auth/login', { username: 'x', password: 'y' }, { origin: 'https://evil.example' })
        expect(other.headers.get('access-control-allow-origin')).toBeNull()
      })
    })

    describe('error', () => {
      it('answers a wrong password and an unknown user with the same 401', async () => {
        const wrong = await host().json('POST', '/api/v1/auth/login', { username: TEST_ADMIN_USERNAME, password: 'not-the-password' })
        const unknown = await host().json('POST', '/api/v1/auth/login', { username: 'nobody-here', password: 'not-the-password' })
        expectEnvelope(wrong, 401, 'INVALID_CREDENTIALS')
        expectEnvelope(unknown, 401, 'INVALID_CREDENTIALS')
        expect(wrong.body).toEqual(unknown.body)
        expect(wrong.body.error.type).toBe('authentication_error')
      })

      it('answers malformed JSON with 400 INVALID_JSON', async () => {
        expectEnvelope(await host().json('POST', '/api/v1/auth/login', '{"username": "admin", '), 400, 'INVALID_JSON')
      })

      it('answers a wrong content type with 415', async () => {
        const res = await host().json('POST', '/api/v1/auth/login', 'username=admin&password=x', {
          'content-type': 'application/x-www-form-urlencoded',
        })
        expectEnvelope(res, 415, 'UNSUPPORTED_MEDIA_TYPE')
      })

      it('answers a body over the limit with 413, with or without Content-Length', async () => {
        const big = JSON.stringify({ username: 'admin', password: 'x'.repeat(2 * 1024 * 1024) })
        expectEnvelope(await host().json('POST', '/api/v1/auth/login', big), 413, 'BODY_TOO_LARGE')
        const stream = new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(big))
            controller.close()
          },
        })
        const res = await host().fetch('/api/v1/auth/login', {
          method: 'POST',
          body: stream,
          headers: { 'content-type': 'application/json' },
          duplex: 'half',
        } as RequestInit)
        const text = await res.text()
        expectEnvelope({ status: res.status, headers: res.headers, body: JSON.parse(text), text }, 413, 'BODY_TOO_LARGE')
      })

      it.each([
        ['no fields', {}, 'username'],
        ['a number as username', { username: 42, password: 'whatever1' }, 'username'],
        ['no password', { username: 'admin' }, 'password'],
        ['an empty password', { username: 'admin', password: '' }, 'password'],
        ['an array', [], undefined],
      ])('answers %s with 400 VALIDATION_FAILED naming the field', async (_what, body, param) => {
        const res = await host().json('POST', '/api/v1/auth/login', body)
        const err = expectEnvelope(res, 400, 'VALIDATION_FAILED')
        if (param) expect(err.param).toBe(param)
      })

      it('refuses a password over 72 bytes with 400 before checking it (bcrypt would truncate it)', async () => {
        const res = await host().json('POST', '/api/v1/auth/login', { username: TEST_ADMIN_USERNAME, password: TEST_ADMIN_PASSWORD + 'x'.repeat(80) })
        expect(expectEnvelope(res, 400, 'VALIDATION_FAILED').param).toBe('password')
      })

      it('answers GET with 405 and the allowed method', async () => {
        const res = await host().json('GET', '/api/v1/auth/login')
        expectEnvelope(res, 405, 'METHOD_NOT_ALLOWED')
        expect(res.headers.get('allow')).toBe('POST')
      })
    })

    describe('security', () => {
      it('never returns a password or a hash, and a token is never a cookie', async () => {
        const res = await host().json('POST', '/api/v1/auth/login', { username: TEST_ADMIN_USERNAME, password: TEST_ADMIN_PASSWORD })
        expect(res.text).not.toContain(TEST_ADMIN_PASSWORD)
        expect(res.text).not.toMatch(/\$2[aby]\$/)
        expect(res.headers.get('set-cookie')).toBeNull()
      })

      it('does not take the client address from a header the client sets', async () => {
        const user = await createUser(host(), ['viewer'])
        const res = await host().json(
          'POST',
          '/api/v1/auth/login',
          { username: user.username, password: user.password },
          { 'x-nexus-client-ip': '203.0.113.9' },
        )
        expect(res.status).toBe(200)
        const [, payloadPart] = (res.body.access_token as string).split('.')
        const { jti } = JSON.parse(Buffer.from(payloadPart!, 'base64url').toString())
        const [row] = await withSql(host(), (sql, t) => sql.unsafe(`select client_ip from ${t('human_sessions')} where jti = $1`, [jti]))
        expect(row!.client_ip).not.toBe('203.0.113.9')
      })

      it('gives a viewer a token whose roles are only its own', async () => {
        const user = await createUser(host(), ['viewer'])
        const res = await host().json('POST', '/api/v1/auth/login', { username: user.username, password: user.password })
        const me = await host().json('GET', '/api/v1/auth/me', undefined, bearer(res.body.access_token))
        expect(me.body.roles).toEqual(['viewer'])
      })
    })
  },
  { groups: ['auth'], env: { NEXUS_CORS_ORIGINS: ORIGIN } },
)
