/**
 * The event log: every state change appends an event in the same transaction, under an advisory lock
 * so ids are assigned in commit order (a reader resuming after id N never misses a later commit), then
 * publishes it on `nexus:events` after commit. PostgreSQL is the record; the bus is only a doorbell.
 */
import type { Db, TxSql } from '../db/index.ts'
import type { Services } from '../services.ts'

export const EVENTS_CHANNEL = 'nexus:events'
export const COMMANDS_CHANNEL = 'nexus:commands'
export const AGENTS_CHANNEL = 'nexus:agents'

/** Event types NEXUS itself emits; a posted event may not use these. */
export const SYSTEM_EVENT_TYPES = [
  'command_created',
  'command_dispatched',
  'command_completed',
  'command_failed',
  'command_requeued',
  'agent_registered',
  'agent_status',
] as const

export interface EventRow {
  id: number
  type: string
  command_id: string | null
  agent_id: string | null
  payload: Record<string, unknown>
  actor: string | null
  created_at: Date | string
}

/** The wire shape of an event: `{"id","type",...}` with the payload's fields beside them. */
export interface WireEvent {
  id: number
  type: string
  command_id?: string
  agent_id?: string
  created_at: string
  [key: string]: unknown
}

export const toWire = (row: EventRow): WireEvent => ({
  ...row.payload,
  id: Number(row.id),
  type: row.type,
  ...(row.command_id ? { command_id: row.command_id } : {}),
  ...(row.agent_id ? { agent_id: row.agent_id } : {}),
  created_at: new Date(row.created_at).toISOString(),
})

const LOCK_NAMESPACE = 7_337_002

export interface NewEvent {
  type: string
  command_id?: string | null
  agent_id?: string | null
  payload?: Record<string, unknown>
  actor?: string | null
}

/**
 * Runs `fn` in a transaction that may append events; returns its result and the events appended, in id
 * order. The lock is taken at the first append, so only the tail of a transaction is serialized.
 */
export const withEvents = async <T>(
  db: Db,
  fn: (tx: TxSql, emit: (event: NewEvent) => Promise<EventRow>) => Promise<T>,
): Promise<{ result: T; events: EventRow[] }> => {
  const events: EventRow[] = []
  const result = await db.sql.begin(async (tx) => {
    let locked = false
    const emit = async (event: NewEvent) => {
      if (!locked) {
        await tx`select pg_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(${db.schema}))`
        locked = true
      }
      const [row] = await tx<EventRow[]>`
        insert into ${db.t.events} (type, command_id, agent_id, payload, actor)
        values (${event.type}, ${event.command_id ?? null}, ${event.agent_id ?? null},
                ${tx.json((event.payload ?? {}) as never)}, ${event.actor ?? null})
        returning *`
      events.push(row!)
      return row!
    }
    return fn(tx, emit)
  })
  return { result: result as T, events }
}

/**
 * Publishes committed events on `nexus:events` (and agent events on `nexus:agents`). Best effort:
 * with the bus down, live clients still get them from the log within a poll interval.
 */
export const publishEvents = async (services: Pick<Services, 'bus' | 'log'>, events: EventRow[]): Promise<void> => {
  for (const row of events) {
    const wire = JSON.stringify(toWire(row))
    try {
      await services.bus.publish(EVENTS_CHANNEL, wire)
      if (row.type.startsWith('agent_')) await services.bus.publish(AGENTS_CHANNEL, wire)
    } catch (err) {
      services.log.warn('event publish failed; live clients will read it from the log', { type: row.type, err })
      return
    }
  }
}

export interface EventQuery {
  after?: number
  types?: string[]
  limit?: number
}

/** Events after an id, oldest first. */
export const listEvents = async (db: Db, q: EventQuery): Promise<EventRow[]> => {
  const after = q.after ?? 0
  const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000)
  if (q.types?.length)
    return db.sql<EventRow[]>`
      select * from ${db.t.events} where id > ${after} and type = any(${q.types}) order by id limit ${limit}`
  return db.sql<EventRow[]>`select * from ${db.t.events} where id > ${after} order by id limit ${limit}`
}

/** The newest event id (0 when there is none). */
export const lastEventId = async (db: Db): Promise<number> => {
  const [row] = await db.sql<{ id: number | null }[]>`select max(id) as id from ${db.t.events}`
  return Number(row?.id ?? 0)
}
