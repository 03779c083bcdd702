/** GET /api/v1/auth/health — the auth service's own checks: database, bus, and an active signing key. */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'

const timed = async <T>(fn: () => Promise<T>): Promise<{ ok: boolean; ms: number; value?: T }> => {
  const started = performance.now()
  try {
    const value = await fn()
    return { ok: true, ms: Math.round(performance.now() - started), value }
  } catch {
    return { ok: false, ms: Math.round(performance.now() - started) }
  }
}

const app = new Hono<AppEnv>().get('/api/v1/auth/health', async (c) => {
  const { db, bus, config } = c.var.services
  const [database, redis, key] = await Promise.all([
    timed(() => db.sql`select 1`),
    timed(() => bus.ping()),
    config.NEXUS_AUTH_JWKS_URL
      ? Promise.resolve({ ok: true, ms: 0, value: 'remote' })
      : timed(async () => {
          const [row] = await db.sql<{ kid: string }[]>`select kid from ${db.t.signing_keys} where status = 'active'`
          if (!row) throw new Error('no active key')
          return row.kid
        }),
  ])
  const checks = {
    database: { status: database.ok ? 'ok' : 'error', latency_ms: database.ms },
    redis: { status: redis.ok ? 'ok' : 'error', latency_ms: redis.ms, driver: bus.kind },
    signing_key: key.ok ? { status: 'ok', kid: key.value } : { status: 'error' },
  }
  const ok = database.ok && key.ok
  return c.json({ status: ok && redis.ok ? 'ok' : 'degraded', checks }, ok ? 200 : 503, { 'cache-control': 'no-store' })
})

export default defineFunction('auth-health', app)
