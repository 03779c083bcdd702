/** POST /api/v1/auth/users (admin) and GET /api/v1/auth/me on each runtime. */
import { describe, expect, it } from 'vitest'
import { withSql } from '../support/auth-forge.ts'
import { adminToken, bearer, describeRuntimes, expectEnvelope, login, loginAs } from '../support/harness.ts'

const rand = () => Math.random().toString(36).slice(2, 8)

// Only the auth functions: a workerd host then bundles and starts far fewer workers.
const AUTH_ONLY = { groups: ['auth' as const] }

describeRuntimes('users', (host) => {
  const create = async (body: unknown, token?: string) =>
    host().json('POST', '/api/v1/auth/users', body, bearer(token ?? (await adminToken(host()))))

  describe('POST /api/v1/auth/users: happy', () => {
    it('creates a user (201) who can log in; the response shows no password or hash', async () => {
      const username = `ops-${rand()}`
      const password = 'correct horse battery'
      const res = await create({ username, password, roles: ['operator', 'agent'] })
      expect(res.status).toBe(201)
      expect(res.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        username,
        roles: ['operator', 'agent'],
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      })
      expect(res.text).not.toContain(password)
      expect(res.text).not.toMatch(/\$2[aby]\$/)
      const token = await login(host(), username, password)
      const me = await host().json('GET', '/api/v1/auth/me', undefined, bearer(token))
      expect(me.body).toMatchObject({ id: res.body.id, username, roles: ['operator', 'agent'] })
    })

    it('defaults to the viewer role', async () => {
      const res = await create({ username: `v-${rand()}`, password: 'long-enough-1' })
      expect(res.status).toBe(201)
      expect(res.body.roles).toEqual(['viewer'])
    })

    it('stores a bcrypt hash of cost 12, never the password', async () => {
      const username = `h-${rand()}`
      await create({ username, password: 'another-password-1' })
      const [row] = await withSql(host(), (sql, t) => sql.unsafe(`select password_hash from ${t('users')} where username = $1`, [username]))
      expect(row!.password_hash).toMatch(/^\$2b\$12\$[./A-Za-z0-9]{53}$/)
    })
  })

  describe('POST /api/v1/auth/users: error', () => {
    it('answers a taken username with 409 USER_EXISTS', async () => {
      const username = `dup-${rand()}`
      expect((await create({ username, password: 'long-enough-1' })).status).toBe(201)
      expectEnvelope(await create({ username, password: 'long-enough-2' }), 409, 'USER_EXISTS')
    })

    it.each([
      ['a username with spaces', { username: 'bad name', password: 'long-enough-1' }, 'username'],
      ['a username over 64 characters', { username: 'u'.repeat(65), password: 'long-enough-1' }, 'username'],
      ['a password under 8 characters', { username: 'short-pw', password: 'seven77' }, 'password'],
      ['a password over 72 bytes (25 three-byte characters)', { username: 'long-pw', password: '€'.repeat(25) }, 'password'],
      ['an unknown role', { username: 'r1', password: 'long-enough-1', roles: ['root'] }, 'roles.0'],
      ['no roles', { username: 'r2', password: 'long-enough-1', roles: [] }, 'roles'],
      ['a repeated role', { username: 'r3', password: 'long-enough-1', roles: ['viewer', 'viewer'] }, 'roles'],
      ['no password', { username: 'r4' }, 'password'],
    ])('answers %s with 400 naming the field', async (_what, body, param) => {
      const res = await create(body)
      expect(expectEnvelope(res, 400, 'VALIDATION_FAILED').param).toBe(param)
    })

    it('answers malformed JSON with 400 and a wrong content type with 415', async () => {
      const token = await adminToken(host())
      expectEnvelope(await host().json('POST', '/api/v1/auth/users', '{"username":', bearer(token)), 400, 'INVALID_JSON')
      expectEnvelope(
        await host().json('POST', '/api/v1/auth/users', 'username=x', { ...bearer(token), 'content-type': 'text/plain' }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      )
    })
  })

  describe('POST /api/v1/auth/users: security', () => {
    it.each(['viewer', 'operator', 'agent'] as const)('a %s cannot create users (403 FORBIDDEN)', async (role) => {
      const res = await create({ username: `x-${rand()}`, password: 'long-enough-1', roles: ['admin'] }, await loginAs(host(), role))
      expectEnvelope(res, 403, 'FORBIDDEN')
      expect(res.body.error.type).toBe('permission_error')
    })

    it('answers no token with 401, before reading the body', async () => {
      expectEnvelope(await host().json('POST', '/api/v1/auth/users', { username: 'x', password: 'y' }), 401, 'UNAUTHORIZED')
      expectEnvelope(await host().json('POST', '/api/v1/auth/users', '{broken'), 401, 'UNAUTHORIZED')
    })
  })

  describe('GET /api/v1/auth/me', () => {
    it('returns id, username, roles and created_at, never the hash', async () => {
      const res = await host().json('GET', '/api/v1/auth/me', undefined, bearer(await loginAs(host(), 'viewer')))
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({ id: expect.any(String), username: expect.any(String), roles: ['viewer'], created_at: expect.any(String) })
      expect(res.text).not.toMatch(/password|hash|\$2[aby]\$/)
    })

    it('answers without a token with 401', async () => {
      expectEnvelope(await host().json('GET', '/api/v1/auth/me'), 401, 'UNAUTHORIZED')
    })
  })
}, AUTH_ONLY)
