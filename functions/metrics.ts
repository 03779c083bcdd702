/** GET /metrics: Prometheus text exposition of every metric recorded in this process (or isolate). */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'
import { readCortexGauges } from '../lib/cortex/metrics.ts'

const app = new Hono<AppEnv>().get('/metrics', async (c) => {
  await readCortexGauges(c.var.services) // queue depth and agent counts, read now through this request's client
  const body = await c.var.services.metrics.render()
  return c.body(body, 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' })
})

export default defineFunction('metrics', app)
