/**
 * GET /api/v1/gateway/usage (admins): the usage log, filtered by key, model and time; as rows, or
 * aggregated per model and/or key per time bucket for charts (`?bucket=hour&group_by=model`).
 */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, parseWith, type AppEnv } from '../lib/app.ts'
import { requireGatewayAdmin } from '../lib/ai/caller.ts'
import { badRequest } from '../lib/errors.ts'

const DAY_MS = 86_400_000

export const Query = z.object({
  key_id: z.uuid('must be a key id (a UUID)').optional(),
  model: z.string().min(1).max(256).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  bucket: z.enum(['minute', 'hour', 'day']).optional(),
  group_by: z
    .string()
    .regex(/^(model|key)(,(model|key))?$/, 'must be "model", "key" or "model,key"')
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** Rows mode: the `next_cursor` of the previous page (rows older than it). */
  cursor: z.coerce.number().int().min(1).optional(),
})

interface UsageRow {
  id: number
  created_at: Date
  key_id: string | null
  subject: string | null
  model: string
  upstream_model: string | null
  host: string | null
  stream: boolean
  prompt_tokens: number
  completion_tokens: number
  latency_ms: number | null
  ttft_ms: number | null
  status: number
  error_code: string | null
}

interface Bucket {
  bucket: Date
  model?: string
  key_id?: string | null
  requests: number
  errors: number
  prompt_tokens: number
  completion_tokens: number
  avg_latency_ms: number | null
  max_latency_ms: number | null
  avg_ttft_ms: number | null
}

const app = new Hono<AppEnv>().use('/api/v1/gateway/usage', requireGatewayAdmin()).get('/api/v1/gateway/usage', async (c) => {
  const q = parseWith(Query, c.req.query())
  const { db } = c.var.services
  const { sql } = db
  const to = q.to ? new Date(q.to) : new Date()
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - DAY_MS)
  if (from > to) throw badRequest('from must not be after to', 'from')
  let where = sql`created_at >= ${from} and created_at < ${to}`
  if (q.key_id) where = sql`${where} and key_id = ${q.key_id}`
  if (q.model) where = sql`${where} and model = ${q.model}`
  const window = { from: from.toISOString(), to: to.toISOString() }

  if (!q.bucket && !q.group_by) {
    if (q.cursor) where = sql`${where} and id < ${q.cursor}`
    const rows = await sql<UsageRow[]>`
      select id, created_at, key_id, subject, model, upstream_model, host, stream, prompt_tokens, completion_tokens,
        latency_ms, ttft_ms, status, error_code
      from ${db.t.gateway_usage} where ${where} order by id desc limit ${q.limit}`
    return c.json({
      ...window,
      usage: rows.map((r) => ({ ...r, created_at: r.created_at.toISOString() })),
      next_cursor: rows.length === q.limit ? rows[rows.length - 1]!.id : null,
    })
  }

  const bucket = q.bucket ?? 'hour'
  const groups = new Set((q.group_by ?? 'model').split(','))
  const byModel = groups.has('model')
  const byKey = groups.has('key')
  const rows = await sql<Bucket[]>`
    select date_trunc(${bucket}, created_at) as bucket
      ${byModel ? sql`, model` : sql``}
      ${byKey ? sql`, key_id` : sql``},
      count(*)::int as requests,
      (count(*) filter (where status >= 400))::int as errors,
      coalesce(sum(prompt_tokens), 0)::int8 as prompt_tokens,
      coalesce(sum(completion_tokens), 0)::int8 as completion_tokens,
      round(avg(latency_ms))::int as avg_latency_ms,
      max(latency_ms) as max_latency_ms,
      round(avg(ttft_ms))::int as avg_ttft_ms
    from ${db.t.gateway_usage}
    where ${where}
    group by 1 ${byModel ? sql`, model` : sql``} ${byKey ? sql`, key_id` : sql``}
    order by 1 ${byModel ? sql`, model` : sql``} ${byKey ? sql`, key_id` : sql``}
    limit 10000`
  return c.json({
    ...window,
    bucket,
    group_by: [...groups],
    buckets: rows.map((r) => ({ ...r, bucket: r.bucket.toISOString() })),
  })
})

export default defineFunction('gateway-usage', app)
