/** The event hub over the run's database and a memory bus: offers, gaps, doorbells, resume. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dropTestSchema, makeServices, type TestServices } from '../../test/support/services.ts'
import { EVENTS_CHANNEL, lastEventId, toWire, withEvents, type EventRow, type WireEvent } from './events.ts'
import { createEventHub } from './hub.ts'

let s: TestServices
beforeAll(async () => {
  s = await makeServices()
})
afterAll(async () => {
  await dropTestSchema(s.db)
  await s.closeDb()
})

const append = async (type: string) => (await withEvents(s.db, async (_tx, emit) => emit({ type }))).events

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
  expect(check()).toBe(true)
}

describe('event hub', () => {
  it('delivers an offered event that follows its head at once, without reading the log', async () => {
    const hub = createEventHub(s, 60_000) // no poll within the test: only offers, doorbells and reads
    const seen: WireEvent[] = []
    const unsubscribe = await hub.subscribe('now', { onEvent: (ev) => seen.push(ev) })
    const head = await lastEventId(s.db)
    // A row that is not in the log: only the offer itself can deliver it.
    const offered: EventRow = { id: head + 1, type: 'test.offered', command_id: null, agent_id: null, payload: {}, actor: null, created_at: new Date() }
    hub.offer([offered])
    expect(seen.map((e) => e.type)).toEqual(['test.offered'])
    unsubscribe()
    await hub.close()
  })

  it('holds an offer that comes before the one filling its gap, then delivers both in order without reading the log', async () => {
    const hub = createEventHub(s, 60_000)
    const seen: WireEvent[] = []
    const unsubscribe = await hub.subscribe('now', { onEvent: (ev) => seen.push(ev) })
    const head = await lastEventId(s.db)
    // Rows that are not in the log (only offers can deliver them), offered as concurrent requests may.
    const row = (id: number, type: string): EventRow => ({ id, type, command_id: null, agent_id: null, payload: {}, actor: null, created_at: new Date() })
    hub.offer([row(head + 2, 'test.second')])
    expect(seen).toEqual([])
    hub.offer([row(head + 1, 'test.first')])
    expect(seen.map((e) => [e.id, e.type])).toEqual([
      [head + 1, 'test.first'],
      [head + 2, 'test.second'],
    ])
    unsubscribe()
    await hub.close()
  })

  it('reads the log on a gap, so events written elsewhere come first, in id order, each once', async () => {
    const hub = createEventHub(s, 60_000)
    const seen: WireEvent[] = []
    const unsubscribe = await hub.subscribe('now', { onEvent: (ev) => seen.push(ev) })
    const elsewhere = await append('test.elsewhere') // another process: no offer, no doorbell
    const mine = await append('test.mine')
    hub.offer(mine)
    await until(() => seen.length === 2)
    expect(seen.map((e) => e.id)).toEqual([elsewhere[0]!.id, mine[0]!.id])
    // The doorbell for an event the hub has: nothing new, nothing twice.
    await s.bus.publish(EVENTS_CHANNEL, JSON.stringify(toWire(mine[0]!)))
    await new Promise((r) => setTimeout(r, 50))
    expect(seen).toHaveLength(2)
    unsubscribe()
    await hub.close()
  })

  it('reads the log when the doorbell names an event it has not seen, even with an "id" inside the payload', async () => {
    const hub = createEventHub(s, 60_000)
    const seen: WireEvent[] = []
    const unsubscribe = await hub.subscribe('now', { onEvent: (ev) => seen.push(ev) })
    const [row] = (await withEvents(s.db, async (_tx, emit) => emit({ type: 'test.bell', payload: { id: 1 } }))).events
    // toWire puts the payload's keys first: the hub must read the event's own id, not the payload's.
    await s.bus.publish(EVENTS_CHANNEL, JSON.stringify(toWire(row!)))
    await until(() => seen.length === 1)
    expect(seen[0]).toMatchObject({ id: row!.id, type: 'test.bell' })
    unsubscribe()
    await hub.close()
  })
})
