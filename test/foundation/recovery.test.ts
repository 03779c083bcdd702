/**
 * Losing and regaining the database and Redis while running: /health turns 503 (database) or
 * degraded (Redis) and recovers with no restart. Each server sits behind a TCP proxy the test cuts.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { RUNTIMES, startTestHost, usingRealRedis, type TestHost } from '../support/harness.ts'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts'

// `any`: the health JSON is read field by field in each predicate.
const poll = async (host: TestHost, want: (status: number, body: any) => boolean, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  let last: { status: number; body: unknown } = { status: 0, body: undefined }
  while (Date.now() < deadline) {
    const res = await host.json('GET', '/health')
    last = res
    if (want(res.status, res.body)) return res
    await new Promise((r) => setTimeout(r, 300))
  }
  throw new Error(`health never reached the wanted state; last: ${JSON.stringify(last)}`)
}

for (const runtime of RUNTIMES) {
  describe(`recovery [${runtime}]`, () => {
    let db: TcpProxy
    let redis: TcpProxy | undefined
    let host: TestHost
    beforeAll(async () => {
      db = await startTcpProxy(inject('databaseUrl'))
      const env: Record<string, string> = { DATABASE_URL: db.via(inject('databaseUrl')) }
      if (usingRealRedis) {
        redis = await startTcpProxy(process.env.REDIS_URL!)
        env.REDIS_URL = redis.via(process.env.REDIS_URL!)
      }
      host = await startTestHost(runtime, { env, functions: ['health'] })
    })
    afterAll(async () => {
      await db.up().catch(() => undefined)
      await redis?.up().catch(() => undefined)
      await host?.close()
      await db.close()
      await redis?.close()
    })

    it('answers 503 while the database is unreachable, and 200 again once it is back', async () => {
      await poll(host, (s) => s === 200)
      await db.down()
      const down = await poll(host, (s) => s === 503)
      expect(down.body.checks.database.status).toBe('error')
      expect(down.body.status).toBe('degraded')
      const ready = await host.json('GET', '/health/ready')
      expect(ready.status).toBe(503)
      expect(ready.body.error.code).toBe('DATABASE_UNAVAILABLE')
      await db.up()
      const back = await poll(host, (s, b) => s === 200 && b.checks.database.status === 'ok')
      expect(back.body.checks.database.status).toBe('ok')
    })

    it.skipIf(!usingRealRedis)('turns degraded while Redis is unreachable and recovers with no restart', async () => {
      await poll(host, (s, b) => s === 200 && b.checks.redis.status === 'ok')
      await redis!.down()
      const down = await poll(host, (s, b) => b.checks?.redis?.status === 'error')
      expect(down.status).toBe(200)
      expect(down.body.status).toBe('degraded')
      await redis!.up()
      const back = await poll(host, (s, b) => s === 200 && b.checks.redis.status === 'ok')
      expect(back.body.checks.database.status).toBe('ok')
    })
  })
}
