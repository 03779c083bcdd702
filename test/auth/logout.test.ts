/** POST /api/v1/auth/logout on each runtime: the token is revoked everywhere, in PostgreSQL and on the bus. */
import Redis from 'ioredis'
import { describe, expect, it } from 'vitest'
import { payloadOf, withSql } from '../support/auth-forge.ts'
import { bearer, createUser, describeRuntimes, expectEnvelope, login, usingRealRedis } from '../support/harness.ts'

// Only the auth functions: a workerd host then bundles and starts far fewer workers.
const AUTH_ONLY = { groups: ['auth' as const] }

describeRuntimes('POST /api/v1/auth/logout', (host) => {
  const freshToken = async (roles: Array<'viewer' | 'admin'> = ['viewer']) => {
    const user = await createUser(host(), roles)
    return { user, token: await login(host(), user.username, user.password) }
  }
  const logout = (token?: string) => host().json('POST', '/api/v1/auth/logout', undefined, token ? bearer(token) : {})

  describe('happy', () => {
    it('answers 204 with no body, then the token is rejected by verify and by requireAuth', async () => {
      const { token } = await freshToken()
      const res = await logout(token)
      expect(res.status).toBe(204)
      expect(res.text).toBe('')
      expectEnvelope(await host().json('POST', '/api/v1/auth/verify', { token }), 401, 'TOKEN_REVOKED')
      expectEnvelope(await host().json('GET', '/api/v1/auth/me', undefined, bearer(token)), 401, 'TOKEN_REVOKED')
    })

    it('records the revocation in human_sessions (so a cache restart cannot undo it)', async () => {
      const { token } = await freshToken()
      await logout(token)
      const [row] = await withSql(host(), (sql, t) =>
        sql.unsafe(`select revoked_at from ${t('human_sessions')} where jti = $1`, [payloadOf(token).jti!]),
      )
      expect(row!.revoked_at).toBeInstanceOf(Date)
    })

    it.skipIf(!usingRealRedis)('keeps the jti on the bus until the token expires', async () => {
      const { token } = await freshToken()
      await logout(token)
      const redis = new Redis(process.env.REDIS_URL!)
      try {
        const ttl = await redis.ttl(`${host().env.NEXUS_BUS_PREFIX}auth:revoked:${payloadOf(token).jti}`)
        const left = payloadOf(token).exp! - Math.floor(Date.now() / 1000)
        expect(ttl).toBeGreaterThan(left - 10)
        expect(ttl).toBeLessThanOrEqual(left + 10)
      } finally {
        redis.disconnect()
      }
    })

    it('revokes only that token: another session of the same user keeps working', async () => {
      const { user, token } = await freshToken()
      const other = await login(host(), user.username, user.password)
      await logout(token)
      expect((await host().json('GET', '/api/v1/auth/me', undefined, bearer(other))).status).toBe(200)
    })
  })

  describe('error', () => {
    it('answers no token with 401 and a bad token with 401 TOKEN_INVALID', async () => {
      expectEnvelope(await logout(), 401, 'UNAUTHORIZED')
      expectEnvelope(await logout('not.a.token'), 401, 'TOKEN_INVALID')
    })

    it('answers a second logout with the same token with 401 TOKEN_REVOKED', async () => {
      const { token } = await freshToken()
      expect((await logout(token)).status).toBe(204)
      expectEnvelope(await logout(token), 401, 'TOKEN_REVOKED')
    })
  })

  describe('security', () => {
    it('a revoked admin token is a 401 on admin routes too, not a 403 or a success', async () => {
      const { token } = await freshToken(['admin'])
      await logout(token)
      expectEnvelope(await host().json('POST', '/api/v1/auth/keys/rotate', undefined, bearer(token)), 401, 'TOKEN_REVOKED')
      expectEnvelope(
        await host().json('POST', '/api/v1/auth/users', { username: 'x-should-not-exist', password: 'long-enough-1', roles: ['admin'] }, bearer(token)),
        401,
        'TOKEN_REVOKED',
      )
    })
  })
}, AUTH_ONLY)
