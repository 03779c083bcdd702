/** requireAuth / requireRole in-process: the 401s and 403s, admin passing every role, c.var.user, query tokens. */
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defineFunction, type AppEnv } from '../app.ts'
import { dropTestSchema, makeServices, type TestServices } from '../../test/support/services.ts'
import { ensureSigningKeys } from './keys.ts'
import { authUser, requireAuth, requireRole } from './middleware.ts'
import { issueAccessToken } from './tokens.ts'
import type { Role } from './types.ts'

let services: TestServices
const tokens: Partial<Record<Role, string>> = {}

const fn = defineFunction(
  'middleware-test',
  new Hono<AppEnv>()
    .get('/any', requireAuth(), (c) => c.json(authUser(c)))
    .get('/operators', requireRole('operator'), (c) => c.json({ ok: true }))
    .get('/agents-or-viewers', requireRole('agent', 'viewer'), (c) => c.json({ ok: true }))
    .get('/stream', requireAuth({ allowQueryToken: true }), (c) => c.json({ user: authUser(c).username }))
    .get('/twice', requireAuth(), requireRole('viewer'), (c) => c.json({ ok: true })),
)

const call = async (path: string, token?: string, raw?: string) => {
  const headers: Record<string, string> = {}
  if (raw !== undefined) headers.authorization = raw
  else if (token) headers.authorization = `Bearer ${token}`
  const res = await fn.fetch(new Request(`http://local${path}`, { headers }), { NEXUS_SERVICES: { services } }, { waitUntil: () => undefined })
  return { status: res.status, body: (await res.json()) as Record<string, any>, headers: res.headers } // any: assertions read fields freely
}

beforeAll(async () => {
  services = await makeServices({ longLived: true })
  await ensureSigningKeys(services)
  const [user] = await services.db.sql<{ id: string }[]>`
    insert into ${services.db.t.users} (username, password_hash) values ('m', 'x') returning id`
  for (const role of ['admin', 'operator', 'agent', 'viewer'] as const)
    tokens[role] = (await issueAccessToken(services, { id: user!.id, username: `as-${role}`, roles: [role] })).token
})
afterAll(async () => {
  await dropTestSchema(services.db)
  await services.closeDb()
})

describe('requireAuth', () => {
  it('sets c.var.user from a valid token', async () => {
    const res = await call('/any', tokens.viewer)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ username: 'as-viewer', roles: ['viewer'], kind: 'user', jti: expect.any(String), exp: expect.any(Number) })
  })

  it.each([
    ['no header', undefined, 'UNAUTHORIZED'],
    ['Basic credentials', 'Basic YWRtaW46eA==', 'TOKEN_INVALID'],
    ['an empty Bearer', 'Bearer ', 'TOKEN_INVALID'],
    ['a Bearer with spaces inside', 'Bearer a b c', 'TOKEN_INVALID'],
    ['garbage', 'Bearer abc.def.ghi', 'TOKEN_INVALID'],
  ])('answers %s with 401 %s', async (_what, raw, code) => {
    const res = await call('/any', undefined, raw)
    expect(res.status).toBe(401)
    expect(res.body.error.code).toBe(code)
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
  })

  it('takes the scheme in any case (RFC 6750)', async () => {
    expect((await call('/any', undefined, `bearer ${tokens.viewer}`)).status).toBe(200)
  })

  it('accepts ?token= only where the route opted in', async () => {
    const q = `?token=${tokens.agent}`
    expect((await call(`/stream${q}`)).status).toBe(200)
    expect((await call(`/any${q}`)).status).toBe(401)
  })
})

describe('requireRole', () => {
  it('lets the role through and admin through every role; 403 FORBIDDEN for the others', async () => {
    expect((await call('/operators', tokens.operator)).status).toBe(200)
    expect((await call('/operators', tokens.admin)).status).toBe(200)
    for (const role of ['agent', 'viewer'] as const) {
      const res = await call('/operators', tokens[role])
      expect(res.status).toBe(403)
      expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', type: 'permission_error' })
    }
  })

  it('accepts any one of several roles', async () => {
    expect((await call('/agents-or-viewers', tokens.agent)).status).toBe(200)
    expect((await call('/agents-or-viewers', tokens.viewer)).status).toBe(200)
    expect((await call('/agents-or-viewers', tokens.operator)).status).toBe(403)
  })

  it('answers 401, not 403, without a token; stacks with requireAuth', async () => {
    expect((await call('/operators')).status).toBe(401)
    expect((await call('/twice', tokens.viewer)).status).toBe(200)
  })

  it('refuses to be built without a role', () => {
    expect(() => requireRole()).toThrow()
  })
})
