/** withEvents against the run's database: all or nothing, ids in commit order, the lock released. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dropTestSchema, makeServices, type TestServices } from '../../test/support/services.ts'
import { withEvents } from './events.ts'

let s: TestServices
beforeAll(async () => {
  s = await makeServices()
})
afterAll(async () => {
  await dropTestSchema(s.db)
  await s.closeDb()
})

const commandCount = async (text: string) => {
  const [row] = await s.db.sql<{ n: number }[]>`select count(*)::int as n from ${s.db.t.commands} where text = ${text}`
  return row!.n
}

describe('withEvents', () => {
  it('commits the statements and the events together, and returns the events in id order', async () => {
    const { result, events } = await withEvents(s.db, async (tx, emit) => {
      const [row] = await tx<{ command_id: string }[]>`
        insert into ${s.db.t.commands} (text, agent_id) values ('together', null) returning command_id`
      emit({ type: 'test.first', command_id: row!.command_id, payload: { n: 1 } })
      emit({ type: 'test.second', command_id: row!.command_id, actor: 'someone' })
      return row!.command_id
    })
    expect(await commandCount('together')).toBe(1)
    expect(events.map((e) => e.type)).toEqual(['test.first', 'test.second'])
    expect(events[1]!.id).toBeGreaterThan(events[0]!.id)
    expect(events[0]).toMatchObject({ command_id: result, payload: { n: 1 }, actor: null })
    expect(events[1]).toMatchObject({ payload: {}, actor: 'someone' })
  })

  it('keeps nothing when the event insert fails, and reports that failure', async () => {
    // The events table's check refuses this type: the failure comes after the command insert succeeded.
    const attempt = withEvents(s.db, async (tx, emit) => {
      await tx`insert into ${s.db.t.commands} (text, agent_id) values ('rolled back', null)`
      emit({ type: 'Not A Valid Type' })
    })
    await expect(attempt).rejects.toMatchObject({ code: '23514' })
    expect(await commandCount('rolled back')).toBe(0)
  })

  it('keeps nothing when the work throws before any event', async () => {
    const attempt = withEvents(s.db, async (tx) => {
      await tx`insert into ${s.db.t.commands} (text, agent_id) values ('thrown', null)`
      throw new Error('changed my mind')
    })
    await expect(attempt).rejects.toThrow('changed my mind')
    expect(await commandCount('thrown')).toBe(0)
  })

  it('gives the connection back in a clean state after each outcome, so the pool keeps working', async () => {
    // The pool has two connections; more transactions than that, failing and not, in a row and at once.
    for (let i = 0; i < 3; i++)
      await withEvents(s.db, async (_tx, emit) => emit({ type: 'Bad Type' })).catch(() => undefined)
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        withEvents(s.db, async (tx, emit) => {
          const [a] = await tx<{ x: string }[]>`select txid_current()::text as x`
          const [b] = await tx<{ x: string }[]>`select txid_current()::text as x`
          emit({ type: 'test.parallel', payload: { i } })
          return a!.x === b!.x
        }),
      ),
    )
    // One transaction id for both statements: every body ran inside a transaction.
    expect(results.map((r) => r.result)).toEqual(Array(6).fill(true))
    const ids = results.map((r) => r.events[0]!.id)
    expect(new Set(ids).size).toBe(6)
    const [lock] = await s.db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_locks where locktype = 'advisory' and classid = 7337002
        and objid::bigint = (hashtext(${s.db.schema})::bigint & 4294967295)`
    expect(lock!.n).toBe(0)
  })
})
