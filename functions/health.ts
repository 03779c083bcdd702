/** GET /health, /health/live, /health/ready: liveness, readiness and real checks of database, bus and Ollama. */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'
import { pingDb } from '../lib/db/index.ts'
import { ApiError } from '../lib/errors.ts'
import type { Services } from '../lib/services.ts'

type Check = { status: 'ok' | 'error'; latency_ms: number; driver?: string; message?: string; hosts?: Check[] }

const timed = async (fn: () => Promise<unknown>, timeoutMs: number, failure: string): Promise<Check> => {
  const started = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs))),
    ])
    return { status: 'ok', latency_ms: Math.round(performance.now() - started) }
  } catch {
    return { status: 'error', latency_ms: Math.round(performance.now() - started), message: failure }
  } finally {
    clearTimeout(timer)
  }
}

const checkOllama = async (urls: string[]): Promise<Check> => {
  const hosts = await Promise.all(
    urls.map(async (url) => {
      const check = await timed(
        async () => {
          const res = await fetch(`${url}/api/version`, { signal: AbortSignal.timeout(1500) })
          await res.body?.cancel()
          if (!res.ok) throw new Error(String(res.status))
        },
        2000,
        'Ollama is not answering',
      )
      return { ...check, driver: new URL(url).host }
    }),
  )
  const up = hosts.filter((h) => h.status === 'ok')
  return {
    status: up.length > 0 ? 'ok' : 'error',
    latency_ms: Math.max(0, ...hosts.map((h) => h.latency_ms)),
    ...(up.length === 0 ? { message: `No Ollama host is reachable; the gateway answers 503 until one is` } : {}),
    hosts,
  }
}

const checkAll = async ({ db, bus, config }: Services) => {
  const [database, redis, ollama] = await Promise.all([
    timed(() => pingDb(db), 3000, 'The database is unreachable'),
    timed(() => bus.ping(), 2000, 'The bus (Redis) is unreachable'),
    checkOllama(config.OLLAMA_BASE_URL),
  ])
  return {
    database: { ...database, driver: config.DATABASE_URL ? 'postgres' : 'pglite' },
    redis: { ...redis, driver: bus.kind },
    ollama,
  }
}

const app = new Hono<AppEnv>()
  .get('/health', async (c) => {
    const checks = await checkAll(c.var.services)
    const allOk = Object.values(checks).every((ch) => ch.status === 'ok')
    const status = allOk ? 'ok' : 'degraded'
    return c.json({ status, checks }, checks.database.status === 'ok' ? 200 : 503, { 'cache-control': 'no-store' })
  })
  .get('/health/live', (c) => c.json({ status: 'ok' }, 200, { 'cache-control': 'no-store' }))
  .get('/health/ready', async (c) => {
    const { services } = c.var
    if (services.lifecycle?.draining) throw new ApiError(503, 'NOT_READY', 'The server is shutting down')
    const database = await timed(() => pingDb(services.db), 3000, 'The database is unreachable')
    if (database.status !== 'ok') throw new ApiError(503, 'DATABASE_UNAVAILABLE', 'The database is unreachable')
    return c.json({ status: 'ready' }, 200, { 'cache-control': 'no-store' })
  })

export default defineFunction('health', app)
