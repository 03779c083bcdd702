/**
 * A restart on the same data, on each runtime: the signing keys, the sessions and the revocations are
 * kept (the revocation even when the bus forgot it), no key is generated again; a different KEK stops
 * start-up with a message that says what to do.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { decodeProtectedHeader } from 'jose'
import { describe, expect, it } from 'vitest'
import { payloadOf } from '../support/auth-forge.ts'
import { bearer, dropSchema, expectEnvelope, login, RUNTIMES, startTestHost, TEST_ADMIN_PASSWORD, usingRealRedis } from '../support/harness.ts'

for (const runtime of RUNTIMES) {
  describe(`restart [${runtime}]`, () => {
    it('keeps keys, tokens and revocations; a different key-encryption key stops start-up', async () => {
      const schema = `t_restart_${Math.random().toString(36).slice(2, 8)}`
      const dataDir = mkdtempSync(join(tmpdir(), 'nexus-restart-'))
      const env = { NEXUS_DB_SCHEMA: schema, NEXUS_BUS_PREFIX: `${schema}:`, NEXUS_DATA_DIR: dataDir }
      const groups = ['auth' as const]
      let databaseUrl = ''
      try {
        const first = await startTestHost(runtime, { env, groups, keepData: true })
        databaseUrl = first.env.DATABASE_URL!
        let before: string, after: string, revoked: string, kid: string, jwks: unknown
        try {
          before = await login(first, 'admin', TEST_ADMIN_PASSWORD)
          const rotated = await first.json('POST', '/api/v1/auth/keys/rotate', undefined, bearer(before))
          kid = rotated.body.kid
          after = await login(first, 'admin', TEST_ADMIN_PASSWORD)
          revoked = await login(first, 'admin', TEST_ADMIN_PASSWORD)
          expect((await first.json('POST', '/api/v1/auth/logout', undefined, bearer(revoked))).status).toBe(204)
          jwks = (await first.json('GET', '/.well-known/jwks.json')).body
        } finally {
          await first.close()
        }
        if (usingRealRedis) {
          // A Redis that lost its data: the revocation must come back from PostgreSQL.
          const redis = new Redis(process.env.REDIS_URL!)
          await redis.del(`${schema}:auth:revoked:${payloadOf(revoked).jti}`)
          redis.disconnect()
        }

        const second = await startTestHost(runtime, { env, groups, keepData: true })
        try {
          expect((await second.json('GET', '/.well-known/jwks.json')).body).toEqual(jwks)
          for (const token of [before, after]) {
            expect((await second.json('POST', '/api/v1/auth/verify', { token })).status).toBe(200)
            expect((await second.json('GET', '/api/v1/auth/me', undefined, bearer(token))).status).toBe(200)
          }
          expectEnvelope(await second.json('POST', '/api/v1/auth/verify', { token: revoked }), 401, 'TOKEN_REVOKED')
          expectEnvelope(await second.json('GET', '/api/v1/auth/me', undefined, bearer(revoked)), 401, 'TOKEN_REVOKED')
          expect(decodeProtectedHeader(await login(second, 'admin', TEST_ADMIN_PASSWORD)).kid).toBe(kid)
          expect(second.logs.some((l) => l.includes('generated signing keys'))).toBe(false)
          expect(second.logs.some((l) => l.includes('created the admin user'))).toBe(false)
        } finally {
          await second.close()
        }

        const otherKek = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')
        await expect(startTestHost(runtime, { env: { ...env, NEXUS_KEY_ENCRYPTION_KEY: otherKek }, groups, keepData: true })).rejects.toThrow(
          /sealed under key-encryption key .* NEXUS_KEY_ENCRYPTION_KEY/,
        )
      } finally {
        if (databaseUrl) await dropSchema(databaseUrl, schema)
        rmSync(dataDir, { recursive: true, force: true })
      }
    }, 180_000) // three host starts in one test; a workerd start alone can take 30 s on a busy machine
  })
}
