/** The PGlite wire server under concurrency: no interleaving inside a query or a transaction. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { startEmbeddedPostgres, type EmbeddedPostgres } from './pglite.ts'

let embedded: EmbeddedPostgres
beforeAll(async () => {
  embedded = await startEmbeddedPostgres('memory://')
})
afterAll(async () => {
  await embedded.close()
})

describe('PGlite wire server', () => {
  it('keeps concurrent pipelined queries from several clients apart', async () => {
    const clients = [1, 2, 3].map(() => postgres(embedded.url, { max: 4, onnotice: () => undefined }))
    await clients[0]!`create table t1 (k text primary key, v int)`
    const codes: string[] = []
    await Promise.all(
      clients.flatMap((sql, c) =>
        Array.from({ length: 60 }, async (_, i) => {
          await sql`insert into t1 values (${`k${c}-${i}`}, ${i})`
          await sql`insert into t1 values (${`k${c}-${i}`}, ${i})`.catch((err) => codes.push(err.code))
          const [row] = await sql`select v from t1 where k = ${`k${c}-${i}`}`
          expect(row!.v).toBe(i)
        }),
      ),
    )
    expect(codes).toHaveLength(180)
    expect(new Set(codes)).toEqual(new Set(['23505'])) // unique violations only, no protocol errors
    await Promise.all(clients.map((c) => c.end()))
  })

  it('gives a transaction the session until it ends, so others never see or join it half-done', async () => {
    const a = postgres(embedded.url, { max: 2, onnotice: () => undefined })
    const b = postgres(embedded.url, { max: 2, onnotice: () => undefined })
    await a`create table t2 (n int)`
    const seen: number[] = []
    await Promise.all([
      ...Array.from({ length: 20 }, () =>
        a.begin(async (tx) => {
          await tx`insert into t2 values (1)`
          await tx`insert into t2 values (1)`
        }),
      ),
      ...Array.from({ length: 20 }, async () => {
        const [r] = await b`select count(*)::int as n from t2`
        seen.push(r!.n)
      }),
    ])
    expect(seen.every((n) => n % 2 === 0)).toBe(true)
    const [r] = await b`select count(*)::int as n from t2`
    expect(r!.n).toBe(40)
    await a.end()
    await b.end()
  })

  it('rolls back the transaction of a client that disconnects inside it', async () => {
    const a = postgres(embedded.url, { max: 1, onnotice: () => undefined })
    const b = postgres(embedded.url, { max: 1, onnotice: () => undefined })
    await b`create table t3 (n int)`
    const tx = a.begin(async (sql) => {
      await sql`insert into t3 values (1)`
      await new Promise(() => undefined) // never commits
    })
    tx.catch(() => undefined)
    await new Promise((r) => setTimeout(r, 100))
    await a.end({ timeout: 0 })
    const [r] = await b`select count(*)::int as n from t3`
    expect(r!.n).toBe(0)
    await b.end()
  })
})
