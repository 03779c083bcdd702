/** The usage writer against the real database: rows buffered, written in one batch, kept when the write fails. */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createMemoryBus } from '../bus/index.ts'
import { createDb, migrate, type Db } from '../db/index.ts'
import { parseEnv } from '../env.ts'
import { createLogger } from '../log.ts'
import { Registry } from '../metrics.ts'
import type { Services } from '../services.ts'
import { FLUSH_ROWS, bufferedUsageRows, flushUsage, recordUsage, type UsageRow } from './usage.ts'

const schema = `u_${Math.random().toString(36).slice(2, 10)}`
let db: Db
let services: Services
const pending: Promise<unknown>[] = []
const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) }

const row = (i: number): UsageRow => ({
  key_id: null,
  subject: 'master',
  model: `m${i}`,
  upstream_model: 'llama3.2:3b',
  host: '127.0.0.1:11434',
  stream: false,
  prompt_tokens: i,
  completion_tokens: 1,
  latency_ms: 5,
  ttft_ms: null,
  status: 200,
  error_code: null,
  created_at: new Date(),
})

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { schema, max: 2 })
  await migrate(db)
  // A long-lived host's services (lifecycle set): one buffer per process.
  services = {
    config: parseEnv({ NEXUS_DB_SCHEMA: schema }),
    db,
    bus: createMemoryBus(),
    log: createLogger('silent'),
    metrics: new Registry(),
    lifecycle: { draining: false, shutdown: new AbortController().signal },
  }
})
afterAll(async () => {
  await db.sql.unsafe(`drop schema if exists "${schema}" cascade`)
  await db.close()
})

const count = async () => Number((await db.sql`select count(*)::int as n from ${db.t.gateway_usage}`)[0]!.n)

describe('usage writer', () => {
  it('buffers rows and writes them in one batch about a second later', async () => {
    for (let i = 0; i < 5; i++) recordUsage(services, ctx, row(i))
    expect(bufferedUsageRows(services)).toBe(5)
    expect(pending).toHaveLength(1) // one timed flush for the batch, not one per row
    expect(await count()).toBe(0)
    await Promise.all(pending.splice(0))
    expect(await count()).toBe(5)
    expect(bufferedUsageRows(services)).toBe(0)
  })

  it('flushes a full batch at once', async () => {
    for (let i = 0; i < FLUSH_ROWS; i++) recordUsage(services, ctx, row(i))
    await Promise.all(pending.splice(0))
    expect(await count()).toBe(5 + FLUSH_ROWS)
  })

  it('keeps the rows when the database refuses them, and writes them on the next flush', async () => {
    const broken = { ...services, db: { ...db, t: { ...db.t, gateway_usage: db.sql('no_such_schema.gateway_usage') } } } as Services
    recordUsage(broken, ctx, row(1))
    await flushUsage(broken)
    expect(bufferedUsageRows(broken)).toBe(1)
  })
})
