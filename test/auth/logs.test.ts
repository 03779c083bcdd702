/**
 * No secret leaks, on each runtime: after a full auth scenario, no captured log line holds a password, a
 * password hash, an access token or any private key value, and no response holds a password, a hash or
 * private key material.
 */
import { expect, it } from 'vitest'
import { serverPrivateJwk, withSql } from '../support/auth-forge.ts'
import { bearer, describeRuntimes, TEST_ADMIN_PASSWORD, type TestHost } from '../support/harness.ts'

const PRIVATE_FIELDS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const

// Only the auth functions: a workerd host then bundles and starts far fewer workers.
const AUTH_ONLY = { groups: ['auth' as const] }

describeRuntimes('secrets stay out of logs and responses', (host) => {
  it('a full scenario: users, right and wrong logins, verify, rotate, logout', async () => {
    const h: TestHost = host()
    const passwords = [TEST_ADMIN_PASSWORD]
    const tokens: string[] = []
    const responses: string[] = []
    const call = async (method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
      const res = await h.json(method, path, body, headers)
      // Login responses carry a token by design; everything else is scanned for tokens too.
      responses.push(path === '/api/v1/auth/login' ? res.text.replace(/"access_token":"[^"]+"/, '"access_token":"…"') : res.text)
      return res
    }
    const loginAs = async (username: string, password: string) => {
      const res = await call('POST', '/api/v1/auth/login', { username, password })
      if (res.status === 200) tokens.push(res.body.access_token)
      return res
    }

    const admin = (await loginAs('admin', TEST_ADMIN_PASSWORD)).body.access_token as string
    const users = [
      { username: 'scan-operator', password: 'Operator-Secret-77', roles: ['operator'] },
      { username: 'scan-viewer', password: 'Pässwörd-mit-Ümlauten', roles: ['viewer'] },
    ]
    for (const u of users) {
      passwords.push(u.password)
      expect((await call('POST', '/api/v1/auth/users', u, bearer(admin))).status).toBe(201)
    }
    const wrong = ['Wrong-Guess-123', 'hunter2-hunter2']
    passwords.push(...wrong)
    const refused = 'Too-Short-But-Logged?'.slice(0, 7)
    passwords.push(refused)
    expect((await call('POST', '/api/v1/auth/users', { username: 'scan-short', password: refused }, bearer(admin))).status).toBe(400)
    for (const w of wrong) expect((await loginAs('scan-operator', w)).status).toBe(401)
    expect((await loginAs('no-such-user', wrong[0]!)).status).toBe(401)
    const tooLong = 'L'.repeat(80)
    passwords.push(tooLong)
    expect((await loginAs('scan-viewer', tooLong)).status).toBe(400)
    const op = (await loginAs('scan-operator', users[0]!.password)).body.access_token as string
    const viewer = (await loginAs('scan-viewer', users[1]!.password)).body.access_token as string
    expect((await call('POST', '/api/v1/auth/verify', { token: op })).status).toBe(200)
    expect((await call('POST', '/api/v1/auth/verify', undefined, bearer(viewer))).status).toBe(200)
    expect((await call('GET', '/api/v1/auth/me', undefined, bearer(op))).status).toBe(200)
    expect((await call('POST', '/api/v1/auth/users', { username: 'x-denied', password: 'long-enough-1' }, bearer(viewer))).status).toBe(403)
    expect((await call('POST', '/api/v1/auth/keys/rotate', undefined, bearer(admin))).status).toBe(201)
    await loginAs('scan-operator', users[0]!.password)
    expect((await call('POST', '/api/v1/auth/logout', undefined, bearer(op))).status).toBe(204)
    expect((await call('POST', '/api/v1/auth/verify', { token: op })).status).toBe(401)
    expect((await call('GET', '/.well-known/jwks.json')).status).toBe(200)

    // Every private value of every key that ever signed, and every stored hash.
    const kids = await withSql(h, (sql, t) => sql.unsafe(`select kid from ${t('signing_keys')} where private_key <> ''`))
    const privateValues: string[] = []
    for (const { kid } of kids) {
      const { jwk } = await serverPrivateJwk(h, kid as string)
      for (const f of PRIVATE_FIELDS) privateValues.push(String((jwk as Record<string, unknown>)[f]))
    }
    expect(privateValues.length).toBeGreaterThanOrEqual(12)
    const hashes = (await withSql(h, (sql, t) => sql.unsafe(`select password_hash from ${t('users')}`))).map((r) => r.password_hash as string)

    // Give workerd's stdout a moment to reach the captured logs.
    await new Promise((r) => setTimeout(r, 500))
    const logs = h.logs.join('\n')
    // The scan must have something to scan: the scenario's own log lines are there.
    expect(logs).toMatch(/"msg":"login"/)
    expect(logs).toMatch(/"msg":"login failed"/)
    expect(logs).toMatch(/"msg":"signing key rotated"/)
    expect(logs).toMatch(/"msg":"logout"/)

    for (const [where, text] of [['logs', logs], ['responses', responses.join('\n')]] as const) {
      for (const p of passwords) expect(text, `${where} hold a password`).not.toContain(p)
      expect(text, `${where} hold a bcrypt hash`).not.toMatch(/\$2[aby]\$\d\d\$/)
      for (const hash of hashes) expect(text, `${where} hold a stored hash`).not.toContain(hash.slice(7))
      for (const v of privateValues) expect(text, `${where} hold private key material`).not.toContain(v.slice(0, 32))
      expect(text, `${where} hold a private JWK field`).not.toMatch(/"(d|p|q|dp|dq|qi)":"/)
      for (const t of tokens) {
        expect(text, `${where} hold an access token`).not.toContain(t)
        expect(text, `${where} hold a token signature`).not.toContain(t.split('.')[2]!)
      }
    }
  })
}, AUTH_ONLY)
