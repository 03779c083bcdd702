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

  it('writes rows that arrive during a write with the next full batch or the timer, not a few at a time', async () => {
    const before = await count()
    for (let i = 0; i < FLUSH_ROWS; i++) recordUsage(services, ctx, row(i))
    // pending: the timed flush, then the full batch's flush (already writing).
    const [timed, full] = pending.splice(0)
    for (let i = 0; i < 3; i++) recordUsage(services, ctx, row(i))
    await full
    expect(await count()).toBe(before + FLUSH_ROWS)
    expect(bufferedUsageRows(services)).toBe(3)
    await timed
    expect(await count()).toBe(before + FLUSH_ROWS + 3)
    expect(bufferedUsageRows(services)).toBe(0)
  })

  it('a timed flush writes what was buffered when it started, and leaves later rows to the next one', async () => {
    const before = await count()
    for (let i = 0; i < 3; i++) recordUsage(services, ctx, row(i))
    const [timed] = pending.splice(0)
    // The flush takes the rows out of the buffer as it starts writing them.
    while (bufferedUsageRows(services) > 0) await new Promise((r) => setImmediate(r))
    recordUsage(services, ctx, row(9))
    recordUsage(services, ctx, row(9))
    await timed
    expect(await count()).toBe(before + 3)
    expect(bufferedUsageRows(services)).toBe(2)
    expect(pending).toHaveLength(1) // the next timed flush, scheduled by the first late row
    await Promise.all(pending.splice(0))
    expect(await count()).toBe(before + 5)
  })

  it('stores every field as given, key totals included', async () => {
    const [key] = await db.sql`
      insert into ${db.t.gateway_keys} (name, key_prefix, key_hash) values ('usage-test', ${`nx-${schema}`}, ${`h-${schema}`})
      returning id`
    const at = new Date('2026-01-02T03:04:05.678Z')
    const given: UsageRow = {
      ...row(7),
      key_id: key!.id as string,
      subject: "key:nx-o'brien <b>",
      stream: true,
      ttft_ms: 3,
      status: 429,
      error_code: 'RATE_LIMITED',
      created_at: at,
    }
    recordUsage(services, ctx, given)
    await flushUsage(services)
    const [stored] = await db.sql`select * from ${db.t.gateway_usage} where key_id = ${given.key_id}`
    expect(stored).toMatchObject({ ...given, created_at: at })
    const [k] = await db.sql`select used_tokens from ${db.t.gateway_keys} where id = ${given.key_id}`
    expect(Number(k!.used_tokens)).toBe(8)
    await Promise.all(pending.splice(0))
  })

  it('keeps the rows when the database refuses them, and writes them on the next flush', async () => {
    const broken = { ...services, db: { ...db, t: { ...db.t, gateway_usage: db.sql('no_such_schema.gateway_usage') } } } as Services
    recordUsage(broken, ctx, row(1))
    await flushUsage(broken)
    expect(bufferedUsageRows(broken)).toBe(1)
  })
})
