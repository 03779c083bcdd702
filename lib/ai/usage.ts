/**
 * The usage log's writer: one row per gateway request, buffered in memory and written in batches off
 * the hot path (every ~1 s or every {@link FLUSH_ROWS} rows), through the execution context's
 * waitUntil so a host drains it before it stops. The buffer is bounded: when the database cannot keep
 * up, the oldest rows are dropped and counted, never the process's memory.
 */
import type { ExecutionContextLike, Services } from '../services.ts'
import { gatewayMetrics } from './metrics.ts'
import { gatewayState } from './state.ts'

export interface UsageRow {
  /** Gateway key id, or null for the master key and access tokens. */
  key_id: string | null
  /** Who called: `master`, `key:<prefix>`, `user:<username>`. */
  subject: string
  model: string
  upstream_model: string | null
  host: string | null
  stream: boolean
  prompt_tokens: number
  completion_tokens: number
  latency_ms: number
  ttft_ms: number | null
  status: number
  error_code: string | null
  created_at: Date
}

export const FLUSH_ROWS = 200
export const FLUSH_INTERVAL_MS = 1_000
export const MAX_BUFFERED_ROWS = 20_000

interface UsageBuffer {
  rows: UsageRow[]
  /** A timed flush is waiting. */
  scheduled: boolean
  /** A flush is writing (it keeps going while rows remain, so one at a time is enough). */
  flushing: boolean
}

const bufferOf = (services: Services) =>
  gatewayState<UsageBuffer>(services, 'usage', () => ({ rows: [], scheduled: false, flushing: false }))

const COLUMNS = [
  'key_id',
  'subject',
  'model',
  'upstream_model',
  'host',
  'stream',
  'prompt_tokens',
  'completion_tokens',
  'latency_ms',
  'ttft_ms',
  'status',
  'error_code',
  'created_at',
] as const

/** Writes `rows` in one statement, and adds their tokens to their keys' totals. */
const write = async (services: Services, rows: UsageRow[]) => {
  const { db } = services
  const perKey = new Map<string, number>()
  for (const r of rows) if (r.key_id) perKey.set(r.key_id, (perKey.get(r.key_id) ?? 0) + r.prompt_tokens + r.completion_tokens)
  await db.sql.begin(async (sql) => {
    await sql`insert into ${db.t.gateway_usage} ${sql(rows, ...COLUMNS)}`
    for (const [id, tokens] of perKey)
      await sql`update ${db.t.gateway_keys} set used_tokens = used_tokens + ${tokens}, last_used_at = now() where id = ${id}`
  })
}

/**
 * Writes what is buffered now. Rows that fail to write go back to the buffer (bounded), so a short
 * database outage loses nothing and a long one loses the oldest rows, counted in
 * `gateway_usage_dropped_total`.
 */
export const flushUsage = async (services: Services): Promise<void> => {
  const buffer = bufferOf(services)
  while (buffer.rows.length > 0) {
    const batch = buffer.rows.splice(0, FLUSH_ROWS * 5)
    try {
      await write(services, batch)
    } catch (err) {
      buffer.rows.unshift(...batch)
      trim(services, buffer)
      services.log.warn('could not write gateway usage rows; will retry', { rows: batch.length, err })
      return
    }
  }
}

const trim = (services: Services, buffer: UsageBuffer) => {
  const over = buffer.rows.length - MAX_BUFFERED_ROWS
  if (over > 0) {
    buffer.rows.splice(0, over)
    gatewayMetrics(services.metrics).usageDropped.inc(undefined, over)
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const runFlush = async (services: Services, buffer: UsageBuffer) => {
  if (buffer.flushing) return
  buffer.flushing = true
  try {
    await flushUsage(services)
  } finally {
    buffer.flushing = false
  }
}

/**
 * Buffers one row. The first row of a batch schedules a flush ~1 s later, a full batch flushes at
 * once; either is handed to `ctx.waitUntil`: on Node the host awaits it on shutdown; on workerd it
 * keeps the request's context (and its database connection) alive until written.
 */
export const recordUsage = (services: Services, ctx: ExecutionContextLike, row: UsageRow): void => {
  const buffer = bufferOf(services)
  buffer.rows.push(row)
  trim(services, buffer)
  if (buffer.rows.length >= FLUSH_ROWS && !buffer.flushing) {
    ctx.waitUntil(runFlush(services, buffer))
    return
  }
  if (buffer.scheduled) return
  buffer.scheduled = true
  ctx.waitUntil(
    (async () => {
      await sleep(FLUSH_INTERVAL_MS)
      buffer.scheduled = false
      await runFlush(services, buffer)
    })(),
  )
}

/** Rows waiting to be written (for tests and the benchmark's memory check). */
export const bufferedUsageRows = (services: Services): number => bufferOf(services).rows.length
