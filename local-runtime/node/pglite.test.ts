/** Embedded PostgreSQL's own upkeep: PGlite runs no autovacuum, so the embedded host vacuums it. */
import { describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { startEmbeddedPostgres } from './pglite.ts'

const connect = (url: string) => postgres(url, { max: 2, onnotice: () => undefined })
const sizeOf = async (sql: postgres.Sql, table: string) =>
  Number((await sql`select pg_total_relation_size(${table}::regclass) as n`)[0]!.n)
/** Updates every row of `table` `times` times, each pass its own statement (its own transaction). */
const churn = async (sql: postgres.Sql, table: string, times: number) => {
  for (let i = 0; i < times; i++) await sql.unsafe(`update ${table} set n = n + 1, status = 'done'`)
}

describe('embedded PostgreSQL upkeep', () => {
  it('has no autovacuum of its own: old row versions pile up until vacuum() reclaims them', async () => {
    const pg = await startEmbeddedPostgres('memory://', { vacuumEveryMs: 0 })
    const sql = connect(pg.url)
    try {
      await sql`create table churned (id serial primary key, status text not null, n int not null)`
      await sql`create index churned_status on churned (status)`
      await sql`insert into churned (status, n) select 'queued', g from generate_series(1, 5000) g`
      const fresh = await sizeOf(sql, 'churned')
      await churn(sql, 'churned', 3)
      const unvacuumed = await sizeOf(sql, 'churned')
      // Nothing took the dead versions away: the table holds about four of each row.
      expect(unvacuumed).toBeGreaterThan(fresh * 2.5)
      const ms = await pg.vacuum()
      expect(ms).toBeGreaterThan(0)
      const [stats] = await sql`select last_vacuum, last_analyze from pg_stat_user_tables where relname = 'churned'`
      expect(stats!.last_vacuum).not.toBeNull()
      expect(stats!.last_analyze).not.toBeNull()
      // The same churn again fits in the space vacuum freed, instead of growing the table as much again.
      await churn(sql, 'churned', 3)
      const after = await sizeOf(sql, 'churned')
      expect(after - unvacuumed).toBeLessThan((unvacuumed - fresh) / 2)
    } finally {
      await sql.end()
      await pg.close()
    }
  })

  it('waits for another connection to end its transaction, which goes on unharmed', async () => {
    const pg = await startEmbeddedPostgres('memory://', { vacuumEveryMs: 0 })
    const sql = connect(pg.url)
    try {
      await sql`create table held (n int)`
      const order: string[] = []
      let vacuumed: Promise<number> | undefined
      await sql.begin(async (tx) => {
        await tx`insert into held values (1)`
        vacuumed = pg.vacuum().then((ms) => (order.push('vacuum'), ms))
        await new Promise((r) => setTimeout(r, 200))
        await tx`insert into held values (2)`
        order.push('commit')
      })
      await vacuumed
      expect(order).toEqual(['commit', 'vacuum'])
      expect((await sql`select n from held order by n`).map((r) => r.n)).toEqual([1, 2])
    } finally {
      await sql.end()
      await pg.close()
    }
  })

  it('vacuums on its own at the interval it was given, and reports each run', async () => {
    const runs: Array<{ ms: number } | { err: unknown }> = []
    const pg = await startEmbeddedPostgres('memory://', { vacuumEveryMs: 150, onVacuum: (r) => runs.push(r) })
    try {
      await expect.poll(() => runs.length, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(2)
      expect(runs.every((r) => 'ms' in r)).toBe(true)
    } finally {
      await pg.close()
    }
    // Closed: no run after it.
    const count = runs.length
    await new Promise((r) => setTimeout(r, 400))
    expect(runs.length).toBe(count)
  })
})
