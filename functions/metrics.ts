/** GET /metrics: Prometheus text exposition of every metric recorded in this process (or isolate). */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'
import { cortexMetrics } from '../lib/cortex/metrics.ts'

const app = new Hono<AppEnv>().get('/metrics', async (c) => {
  cortexMetrics(c.var.services) // registers the gauges that read the database at scrape time
  const body = await c.var.services.metrics.render()
  return c.body(body, 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' })
})

export default defineFunction('metrics', app)
