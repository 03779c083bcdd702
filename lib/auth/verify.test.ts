/** verifyAccessToken against a remote JWKS (a function deployed apart): keys from the URL, refreshes, an unreachable set. */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { dropTestSchema, makeServices, type TestServices } from '../../test/support/services.ts'
import { ApiError } from '../errors.ts'
import { pruneSessions } from './bootstrap.ts'
import { KEY_SET_COOLDOWN_MS, KEY_SET_MAX_AGE_MS, verifyAccessToken } from './verify.ts'

let server: Server
let url = ''
let served: JWK[] = []
let fetches = 0
const opened: TestServices[] = []

beforeAll(async () => {
  server = createServer((_req, res) => {
    fetches++
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys: served }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
})
afterAll(async () => {
  await new Promise((r) => server.close(r))
  for (const s of opened) {
    await dropTestSchema(s.db)
    await s.closeDb()
  }
})

const keyPair = async (kid: string) => {
  const { publicKey, privateKey } = await generateKeyPair('RS256')
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' }
  return { jwk, privateKey }
}

const sign = (privateKey: CryptoKey, kid: string) =>
  new SignJWT({ username: 'remote', roles: ['viewer'] })
    .setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' })
    .setIssuer('nexus')
    .setAudience('nexus')
    .setSubject('00000000-0000-4000-8000-000000000002')
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(privateKey)

const remote = async (jwksUrl: string) => {
  const s = await makeServices({ env: { NEXUS_AUTH_JWKS_URL: jwksUrl } })
  opened.push(s)
  return s
}

describe('verifyAccessToken with NEXUS_AUTH_JWKS_URL', () => {
  it('verifies with keys from the URL, and caches them', async () => {
    const a = await keyPair('remote-a')
    served = [a.jwk]
    const s = await remote(url)
    fetches = 0
    const user = await verifyAccessToken(s, await sign(a.privateKey, 'remote-a'))
    expect(user).toMatchObject({ username: 'remote', roles: ['viewer'], kind: 'user' })
    await verifyAccessToken(s, await sign(a.privateKey, 'remote-a'))
    expect(fetches).toBe(1)
  })

  it('refetches on an unknown kid (a rotation), and only once per cooldown for made-up kids', async () => {
    const a = await keyPair('remote-a')
    const b = await keyPair('remote-b')
    served = [a.jwk]
    const s = await remote(`${url}?b`)
    await verifyAccessToken(s, await sign(a.privateKey, 'remote-a'))
    served = [a.jwk, b.jwk] // rotated at the auth service
    // Within the cooldown after the first load: the new kid is not looked up yet.
    const early = await verifyAccessToken(s, await sign(b.privateKey, 'remote-b')).catch((e: unknown) => e)
    expect(early).toBeInstanceOf(ApiError)
    expect((early as ApiError).code).toBe('TOKEN_INVALID')
    // After the cooldown, the unknown kid triggers one refetch and verifies.
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() + KEY_SET_COOLDOWN_MS + 1_000)
      const before = fetches
      expect((await verifyAccessToken(s, await sign(b.privateKey, 'remote-b'))).username).toBe('remote')
      expect(fetches).toBe(before + 1)
    } finally {
      vi.useRealTimers()
    }
  })

  it('remembers a verified token, yet refuses it once it expires or its key leaves the key set', async () => {
    const a = await keyPair('remote-a')
    served = [a.jwk]
    const s = await remote(`${url}?d`)
    const token = await sign(a.privateKey, 'remote-a')
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number
    expect((await verifyAccessToken(s, token)).username).toBe('remote')
    expect((await verifyAccessToken(s, token)).username).toBe('remote') // from the cache
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      // Past its exp (and the clock tolerance): expired, cached or not.
      vi.setSystemTime((exp + 6) * 1000)
      await expect(verifyAccessToken(s, token)).rejects.toMatchObject({ status: 401, code: 'TOKEN_EXPIRED' })
      // Back in its lifetime, but the auth service dropped the key: once the key set is reloaded, refused.
      vi.useRealTimers()
      const other = await sign(a.privateKey, 'remote-a')
      expect((await verifyAccessToken(s, other)).username).toBe('remote')
      served = []
      vi.useFakeTimers({ toFake: ['Date'] })
      vi.setSystemTime(Date.now() + KEY_SET_MAX_AGE_MS + KEY_SET_COOLDOWN_MS + 1_000)
      await expect(verifyAccessToken(s, other)).rejects.toMatchObject({ status: 401, code: 'TOKEN_INVALID' })
    } finally {
      vi.useRealTimers()
    }
  })

  it('keeps only RSA signing keys for RS256 with a well-formed kid', async () => {
    const a = await keyPair('../../etc/passwd')
    const ok = await keyPair('fine-kid')
    served = [a.jwk, { ...ok.jwk, use: 'enc' }]
    const s = await remote(`${url}?c`)
    const err = await verifyAccessToken(s, await sign(ok.privateKey, 'fine-kid')).catch((e: unknown) => e)
    expect((err as ApiError).code).toBe('TOKEN_INVALID')
  })

  it('answers 503 when the key set is unreachable and none is cached', async () => {
    const a = await keyPair('remote-a')
    const s = await remote('http://127.0.0.1:9/.well-known/jwks.json')
    const err = await verifyAccessToken(s, await sign(a.privateKey, 'remote-a')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 503, code: 'UPSTREAM_UNAVAILABLE' })
  })
})

describe('pruneSessions', () => {
  it('deletes sessions a week past expiry and keeps the rest', async () => {
    const s = await makeServices()
    opened.push(s)
    const { sql, t } = s.db
    const [user] = await sql<{ id: string }[]>`insert into ${t.users} (username, password_hash) values ('p', 'x') returning id`
    await sql`insert into ${t.human_sessions} (jti, user_id, kid, expires_at) values
      ('old', ${user!.id}, 'k', now() - interval '8 days'), ('recent', ${user!.id}, 'k', now() - interval '1 day'),
      ('live', ${user!.id}, 'k', now() + interval '1 day')`
    expect(await pruneSessions(s)).toBe(1)
    const left = await sql<{ jti: string }[]>`select jti from ${t.human_sessions} order by jti`
    expect(left.map((r) => r.jti)).toEqual(['live', 'recent'])
  })
})
