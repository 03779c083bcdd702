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

/**
 * The events lock as a one-row subquery, for a statement that inserts events itself (a claim): joined
 * into the insert's source, it is held before any event row, and its id, is produced.
 */
export const eventLock = (db: Db) => db.sql`(select pg_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(${db.schema})))`

export interface NewEvent {
  type: string
  command_id?: string | null
  agent_id?: string | null
  payload?: Record<string, unknown>
  actor?: string | null
}

const toRecord = (e: NewEvent) => ({
  type: e.type,
  command_id: e.command_id ?? null,
  agent_id: e.agent_id ?? null,
  payload: e.payload ?? {},
  actor: e.actor ?? null,
})

/** A transaction's last statement, sent but not awaited: see {@link deferred}. */
export class Deferred<T> {
  constructor(readonly promise: Promise<T>) {
    promise.catch(() => undefined) // awaited by withEvents; never an unhandled rejection meanwhile
  }
}

/**
 * Marks `query` (already sent, e.g. `tx\`...\`.execute()`) as the transaction's last statement, for
 * `fn` to return unawaited: withEvents then sends the events and the COMMIT right behind it, in the
 * same write, and awaits all three together. For a statement whose events do not depend on what it
 * returns; a failure of it rolls the whole transaction back, and is what the caller sees.
 */
export const deferred = <T>(query: PromiseLike<T>): Deferred<T> => new Deferred(Promise.resolve(query))

/**
 * Runs `fn` in a transaction that may append events; returns its result and the events appended, in id
 * order. Events are written at the end by one statement that takes the lock and inserts them, and the
 * COMMIT is pipelined behind it: the lock is held for that statement and the commit, with no round trip
 * to this process in between, however busy it is.
 */
export const withEvents = async <T>(
  db: Db,
  fn: (tx: TxSql, emit: (event: NewEvent) => void) => Promise<T | Deferred<T>>,
): Promise<{ result: T; events: EventRow[] }> => {
  const sql = await db.sql.reserve()
  const tx = sql as unknown as TxSql
  let open = false
  try {
    // BEGIN goes out in one write with the transaction's first statement (postgres.js batches a tick's
    // writes): no round trip of its own. A failed BEGIN fails that statement too, and is reported below.
    const begin = sql`begin`.execute()
    begin.catch(() => undefined)
    open = true
    const pending: NewEvent[] = []
    const out = await fn(tx, (event) => void pending.push(event))
    await begin
    const last = out instanceof Deferred ? (out as Deferred<T>).promise : Promise.resolve(out as T)
    // The lock is a join input, so it is held before any row (and its id) is produced.
    const insert = pending.length
      ? sql<EventRow[]>`
          insert into ${db.t.events} (type, command_id, agent_id, payload, actor)
          select e.type, e.command_id, e.agent_id, e.payload, e.actor
          from ${eventLock(db)} as lock,
            jsonb_to_recordset(${tx.json(pending.map(toRecord) as never)}::jsonb)
              as e(type text, command_id uuid, agent_id text, payload jsonb, actor text)
          returning *`.execute()
      : Promise.resolve([] as EventRow[])
    // Sent at once, behind the last statement and the insert. Should either fail, PostgreSQL answers
    // this COMMIT with a ROLLBACK: nothing of the transaction is kept, and that failure is what the
    // caller sees (the first one: after it PostgreSQL refuses the rest of the transaction).
    open = false
    const commit = sql`commit`.execute()
    const [done, inserted] = await Promise.allSettled([last, insert, commit])
    if (done.status === 'rejected') throw done.reason
    if (inserted.status === 'rejected') throw inserted.reason
    await commit
    return { result: done.value, events: [...inserted.value].sort((a, b) => Number(a.id) - Number(b.id)) }
  } catch (err) {
    if (open) await sql`rollback`.catch(() => undefined)
    throw err
  } finally {
    sql.release()
  }
}

/**
 * Publishes committed events on `nexus:events` (and agent events on `nexus:agents`), after `before`
 * (other messages of the same change, e.g. a command's announcement), all in one round trip. Best
 * effort: with the bus down, live clients still get the events from the log within a poll interval.
 */
export const publishEvents = async (
  services: Pick<Services, 'bus' | 'log'>,
  events: EventRow[],
  before: ReadonlyArray<readonly [string, string]> = [],
): Promise<void> => {
  const messages: Array<readonly [string, string]> = [...before]
  for (const row of events) {
    const wire = JSON.stringify(toWire(row))
    messages.push([EVENTS_CHANNEL, wire])
    if (row.type.startsWith('agent_')) messages.push([AGENTS_CHANNEL, wire])
  }
  try {
    await services.bus.publishMany(messages)
  } catch (err) {
    services.log.warn('event publish failed; live clients will read the events from the log, agents claim their commands', {
      types: events.map((e) => e.type),
      err,
    })
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
