/**
 * The usage log's writer: one row per gateway request, buffered in memory and written in batches off
 * the hot path (every ~1 s, or at once when {@link FLUSH_ROWS} rows are waiting), through the execution
 * context's waitUntil so a host drains it before it stops. The buffer is bounded: when the database cannot keep
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
  /** A flush is writing (one at a time). */
  flushing: boolean
  /** A timed flush came while another was writing: that one writes everything before it stops. */
  drainAll: boolean
}

const bufferOf = (services: Services) =>
  gatewayState<UsageBuffer>(services, 'usage', () => ({ rows: [], scheduled: false, flushing: false, drainAll: false }))

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

/**
 * Writes `rows` in one statement, and adds their tokens to their keys' totals. The rows go as one
 * JSON parameter, so the statement's text is the same for every batch size: prepared once per
 * connection, where a VALUES list of 13 parameters per row would be a new statement for each size.
 */
const write = async (services: Services, rows: UsageRow[]) => {
  const { db } = services
  const perKey = new Map<string, number>()
  for (const r of rows) if (r.key_id) perKey.set(r.key_id, (perKey.get(r.key_id) ?? 0) + r.prompt_tokens + r.completion_tokens)
  const insert = (sql: typeof db.sql) => sql`
    insert into ${db.t.gateway_usage} (${sql(COLUMNS)})
    select ${sql(COLUMNS)} from jsonb_to_recordset(${sql.json(rows as never)}::jsonb) as r(
      key_id uuid, subject text, model text, upstream_model text, host text, stream boolean,
      prompt_tokens integer, completion_tokens integer, latency_ms integer, ttft_ms integer,
      status integer, error_code text, created_at timestamptz)`
  if (perKey.size === 0) {
    await insert(db.sql)
    return
  }
  await db.sql.begin(async (sql) => {
    await insert(sql as unknown as typeof db.sql) // a transaction's sql is the same tag, minus the pool's methods
    for (const [id, tokens] of perKey)
      await sql`update ${db.t.gateway_keys} set used_tokens = used_tokens + ${tokens}, last_used_at = now() where id = ${id}`
  })
}

const trim = (services: Services, buffer: UsageBuffer) => {
  const over = buffer.rows.length - MAX_BUFFERED_ROWS
  if (over > 0) {
    buffer.rows.splice(0, over)
    gatewayMetrics(services.metrics).usageDropped.inc(undefined, over)
  }
}

/**
 * Writes buffered rows in batches: those buffered when it starts when `all`, and any full batch
 * ({@link FLUSH_ROWS}); rows that arrive meanwhile wait for a full batch or the next timed flush, so
 * a steady trickle is never written a few rows at a time. Rows that fail to write go back to the
 * buffer (bounded), so a short database outage loses nothing and a long one loses the oldest rows,
 * counted in `gateway_usage_dropped_total`. Returns false when a write failed.
 */
const drain = async (services: Services, buffer: UsageBuffer, all: boolean): Promise<boolean> => {
  let owed = all ? buffer.rows.length : 0
  for (;;) {
    if (buffer.drainAll) {
      buffer.drainAll = false
      owed = buffer.rows.length
    }
    if (owed <= 0 && buffer.rows.length < FLUSH_ROWS) return true
    const batch = buffer.rows.splice(0, FLUSH_ROWS * 5)
    owed -= batch.length
    try {
      await write(services, batch)
    } catch (err) {
      buffer.rows.unshift(...batch)
      trim(services, buffer)
      services.log.warn('could not write gateway usage rows; will retry', { rows: batch.length, err })
      return false
    }
  }
}

/** Writes everything buffered now (a host's shutdown, tests). */
export const flushUsage = async (services: Services): Promise<void> => {
  await drain(services, bufferOf(services), true)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const runFlush = async (services: Services, ctx: ExecutionContextLike, buffer: UsageBuffer, all: boolean) => {
  if (buffer.flushing) {
    // The writer at work takes these rows too before it stops.
    if (all) buffer.drainAll = true
    return
  }
  buffer.flushing = true
  let ok: boolean
  try {
    ok = await drain(services, buffer, all)
  } finally {
    buffer.flushing = false
  }
  // After a failed write the rows wait for the next timed flush; arrange one if none is waiting.
  if (!ok && buffer.rows.length > 0) schedule(services, ctx, buffer)
}

const schedule = (services: Services, ctx: ExecutionContextLike, buffer: UsageBuffer) => {
  if (buffer.scheduled) return
  buffer.scheduled = true
  ctx.waitUntil(
    (async () => {
      await sleep(FLUSH_INTERVAL_MS)
      buffer.scheduled = false
      await runFlush(services, ctx, buffer, true)
    })(),
  )
}

/**
 * Buffers one row. The first row of a batch schedules a flush of everything ~1 s later; a full batch
 * is written at once, and rows that arrive while it is written wait for the next full batch or that
 * timed flush (never written a few at a time). Both are handed to `ctx.waitUntil`: on Node the host
 * awaits them on shutdown; on workerd they keep the request's context (and its database connection)
 * alive until written.
 */
export const recordUsage = (services: Services, ctx: ExecutionContextLike, row: UsageRow): void => {
  const buffer = bufferOf(services)
  buffer.rows.push(row)
  trim(services, buffer)
  if (buffer.rows.length >= FLUSH_ROWS && !buffer.flushing) ctx.waitUntil(runFlush(services, ctx, buffer, false))
  schedule(services, ctx, buffer)
}

/** Rows waiting to be written (for tests and the benchmark's memory check). */
export const bufferedUsageRows = (services: Services): number => bufferOf(services).rows.length
