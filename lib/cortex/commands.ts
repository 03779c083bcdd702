/**
 * The durable command queue. PostgreSQL holds every command until it is completed or failed for good;
 * agents claim under a lease (`FOR UPDATE SKIP LOCKED`), a lease that runs out returns the command to
 * `queued` with backoff, and after `max_attempts` it fails for good (the dead-letter state).
 */
import * as z from 'zod'
import type { AuthUser } from '../auth/types.ts'
import type { Db, TxSql } from '../db/index.ts'
import { ApiError, badRequest, conflict, forbidden, notFound } from '../errors.ts'
import type { Services } from '../services.ts'
import { AgentId, markSilentAgentsOffline, mayActFor, touchAgent } from './agents.ts'
import { COMMANDS_CHANNEL, deferred, eventLock, publishEvents, withEvents, type EventRow, type NewEvent } from './events.ts'
import { eventHub } from './hub.ts'
import { cortexMetrics } from './metrics.ts'
import { route } from './routing.ts'
import { safeJson, safeText } from './text.ts'

export const MAX_TEXT = 10_000
/** Finished commands are cached this long (the seed's result TTL). */
export const RESULT_TTL_SECONDS = 300
export const DEFAULT_LEASE_SECONDS = 60
export const MAX_WAIT_SECONDS = 30

export const CommandId = z.string().uuid('must be a command id (a UUID)')

export const CreateBody = z.object({
  text: safeText(MAX_TEXT, 1),
  agent_id: AgentId.optional(),
  priority: z.number().int().min(-100).max(100).optional(),
  max_attempts: z.number().int().min(1).max(50).optional(),
})
export type CreateBody = z.infer<typeof CreateBody>

export const CompleteBody = z.object({
  result: z.union([safeText(1_000_000), z.null()]).optional(),
  data: safeJson(512 * 1024).optional(),
  lease_token: z.string().uuid().optional(),
})
export type CompleteBody = z.infer<typeof CompleteBody>

export const FailBody = z.object({
  error: safeText(10_000, 1),
  retry: z.boolean().optional(),
  lease_token: z.string().uuid().optional(),
})
export type FailBody = z.infer<typeof FailBody>

export type CommandStatus = 'queued' | 'dispatched' | 'completed' | 'failed'

export interface CommandRow {
  command_id: string
  seq: number
  text: string
  agent_id: string | null
  status: CommandStatus
  result: string | null
  data: unknown
  error: string | null
  priority: number
  attempts: number
  max_attempts: number
  available_at: Date
  lease_token: string | null
  lease_expires_at: Date | null
  routed_by_rule: number | null
  created_by: string | null
  created_at: Date
  updated_at: Date
  dispatched_at: Date | null
  finished_at: Date | null
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null)

/** The public shape of a command. The lease token is only given to the agent that claimed it. */
export const toCommand = (r: CommandRow, withLease = false) => ({
  command_id: r.command_id,
  text: r.text,
  agent_id: r.agent_id,
  status: r.status,
  result: r.result,
  data: r.data ?? null,
  error: r.error,
  priority: r.priority,
  attempts: r.attempts,
  max_attempts: r.max_attempts,
  routed_by_rule: r.routed_by_rule === null ? null : Number(r.routed_by_rule),
  created_by: r.created_by,
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
  dispatched_at: iso(r.dispatched_at),
  finished_at: iso(r.finished_at),
  available_at: iso(r.available_at),
  lease_expires_at: iso(r.lease_expires_at),
  ...(withLease ? { lease_token: r.lease_token } : {}),
})
export type Command = ReturnType<typeof toCommand>

const cacheKey = (id: string) => `cmd:${id}`
const summary = (r: CommandRow) => ({ status: r.status, attempts: r.attempts, text: r.text, priority: r.priority })

/**
 * After a commit: publish the events (the doorbell every hub, this process's included, reads the log on),
 * count. Never fails the request; with the bus down, hubs still read the log on their poll.
 */
const afterCommit = async (services: Services, events: EventRow[], before?: ReadonlyArray<readonly [string, string]>) => {
  eventHub(services).offer(events)
  await publishEvents(services, events, before)
  const m = cortexMetrics(services)
  for (const e of events) m.events.inc({ type: e.type })
}

// commands.agent_id references agents: the only foreign key a command insert can break.
const FOREIGN_KEY_VIOLATION = '23503'

/** Creates a command for `agent_id`, or for the agent the routing rules pick. */
export const createCommand = async (services: Services, user: AuthUser, body: CreateBody): Promise<Command> => {
  const { db } = services
  const { result: row, events } = await withEvents(db, async (tx, emit) => {
    let agentId = body.agent_id
    let ruleId: number | null = null
    if (!agentId) {
      const routed = await route(tx, db, body.text, services.config.NEXUS_AGENT_TTL)
      if (!routed)
        throw new ApiError(409, 'NO_ROUTE', 'No agent_id was given and no routing rule matches this command', { param: 'agent_id' })
      agentId = routed.agentId
      ruleId = routed.ruleId
    }
    // The id is made here, so the event is known before the insert answers: the insert, the event and
    // the COMMIT go out in one write. An unknown agent fails the insert on its foreign key, and with it
    // the whole transaction.
    const commandId = crypto.randomUUID()
    const priority = body.priority ?? 0
    emit({
      type: 'command_created',
      command_id: commandId,
      agent_id: agentId,
      actor: user.username,
      payload: { status: 'queued', attempts: 0, text: body.text, priority },
    })
    return deferred(
      tx<CommandRow[]>`
        insert into ${db.t.commands} (command_id, text, agent_id, priority, max_attempts, routed_by_rule, created_by)
        values (${commandId}, ${body.text}, ${agentId}, ${priority}, ${body.max_attempts ?? 5}, ${ruleId}, ${user.sub})
        returning *`
        .execute()
        .then((rows) => rows[0]!),
    )
  }).catch((err: unknown) => {
    if ((err as { code?: unknown }).code === FOREIGN_KEY_VIOLATION)
      throw new ApiError(400, 'AGENT_NOT_FOUND', `agent_id: agent "${body.agent_id}" is not registered`, { param: 'agent_id' })
    throw err
  })
  // The contract's announcement for Redis subscribers: at least command_id, agent_id, text.
  const announcement = {
    command_id: row.command_id,
    agent_id: row.agent_id,
    text: row.text,
    priority: row.priority,
    created_at: iso(row.created_at),
  }
  // Published first, in the same round trip as the event.
  await afterCommit(services, events, [[COMMANDS_CHANNEL, JSON.stringify(announcement)]])
  return toCommand(row)
}

const commandEvent = (type: string, r: CommandRow, actor?: string, extra: Record<string, unknown> = {}): NewEvent => ({
  type,
  command_id: r.command_id,
  agent_id: r.agent_id,
  actor: actor ?? null,
  payload: { ...summary(r), ...extra },
})

/**
 * A command by id. A finished one (completed or failed: it no longer changes, until an operator's
 * retry, which drops it) is cached on the bus for RESULT_TTL_SECONDS on its first read.
 */
export const getCommand = async (services: Services, id: string): Promise<Command> => {
  const { db, bus } = services
  const cached = await bus.get(cacheKey(id)).catch(() => null)
  if (cached) return JSON.parse(cached) as Command
  const [row] = await db.sql<CommandRow[]>`select * from ${db.t.commands} where command_id = ${id}`
  if (!row) throw notFound(`Command ${id}`, 'COMMAND_NOT_FOUND')
  const command = toCommand(row)
  if (row.status === 'completed' || row.status === 'failed') await cacheFinished(services, command)
  return command
}

const cacheFinished = (services: Services, command: Command) =>
  services.bus.set(cacheKey(command.command_id), JSON.stringify(command), { ttlSeconds: RESULT_TTL_SECONDS }).catch(() => false)

export interface ListQuery {
  status?: CommandStatus
  agent_id?: string
  limit: number
  cursor?: number
}

/** Newest first; `next_cursor` continues after the last one. */
export const listCommands = async (db: Db, q: ListQuery) => {
  const rows = await db.sql<CommandRow[]>`
    select * from ${db.t.commands}
    where true
    ${q.status ? db.sql`and status = ${q.status}` : db.sql``}
    ${q.agent_id ? db.sql`and agent_id = ${q.agent_id}` : db.sql``}
    ${q.cursor !== undefined ? db.sql`and seq < ${q.cursor}` : db.sql``}
    order by seq desc
    limit ${q.limit + 1}`
  const page = rows.slice(0, q.limit)
  const more = rows.length > q.limit
  return {
    commands: page.map((r) => toCommand(r)),
    next_cursor: more ? encodeCursor(Number(page[page.length - 1]!.seq)) : null,
  }
}

export const encodeCursor = (seq: number) => btoa(`s:${seq}`).replace(/=+$/, '')
export const decodeCursor = (cursor: string): number => {
  try {
    const m = /^s:(\d{1,15})$/.exec(atob(cursor))
    if (m) return Number(m[1])
  } catch {
    // fall through to the error below
  }
  throw badRequest('cursor is not a cursor this API gave out', 'cursor')
}

/** Seconds before a command that failed its attempt `n` may be claimed again: 2, 4, 8 ... up to 5 minutes. */
export const backoffSeconds = (attempts: number) => Math.min(2 ** Math.max(1, attempts), 300)

/**
 * Claims the next command for `agentId` under a lease: highest priority, then oldest. `null` when
 * there is none. Safe across processes: a row is locked and skipped by concurrent claimers.
 */
export const claimOne = async (services: Services, agentId: string, leaseSeconds: number, actor: string) => {
  const { db } = services
  // One statement, so one round trip and no transaction around it: the claim, and its event inserted
  // under the events lock (the command's row lock comes first, as everywhere). The event's payload is
  // what commandEvent would make of the row, lease_expires_at in toISOString()'s format.
  const [row] = await db.sql<Array<CommandRow & { event_id: number; event_created_at: Date; event_payload: Record<string, unknown> }>>`
    with claimed as (
      update ${db.t.commands} c set status = 'dispatched', lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => ${leaseSeconds}), attempts = attempts + 1,
        dispatched_at = now(), updated_at = now()
      where c.command_id = (
        select command_id from ${db.t.commands}
        where agent_id = ${agentId} and status = 'queued' and available_at <= now()
        order by priority desc, seq
        limit 1
        for update skip locked)
      returning c.*),
    ev as (
      insert into ${db.t.events} (type, command_id, agent_id, payload, actor)
      select 'command_dispatched', c.command_id, c.agent_id,
        jsonb_build_object('status', c.status, 'attempts', c.attempts, 'text', c.text, 'priority', c.priority,
          'lease_expires_at', to_char(c.lease_expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
        ${actor}
      from claimed c, ${eventLock(db)} as lock
      returning id, created_at, payload, command_id)
    select c.*, e.id as event_id, e.created_at as event_created_at, e.payload as event_payload
    from claimed c join ev e on e.command_id = c.command_id`
  if (!row) return null
  const { event_id, event_created_at, event_payload, ...command } = row
  const event: EventRow = {
    id: event_id,
    type: 'command_dispatched',
    command_id: command.command_id,
    agent_id: command.agent_id,
    payload: event_payload,
    actor,
    created_at: event_created_at,
  }
  await afterCommit(services, [event])
  return toCommand(command as CommandRow, true)
}

/**
 * Claims, waiting up to `waitSeconds` for work (woken by this process's event hub, re-checked every
 * second for backoffs and expired leases elsewhere). Gives up early when `signal` aborts.
 */
export const claim = async (
  services: Services,
  user: AuthUser,
  agentId: string,
  options: { waitSeconds: number; leaseSeconds: number; signal?: AbortSignal },
) => {
  await touchAgent(services, agentId).catch(() => undefined)
  const deadline = Date.now() + options.waitSeconds * 1000
  let wake: (() => void) | undefined
  let unsubscribe: (() => void) | undefined
  try {
    for (;;) {
      await sweepIfDue(services)
      const got = await claimOne(services, agentId, options.leaseSeconds, user.username)
      if (got || Date.now() >= deadline || options.signal?.aborted) return got
      if (!unsubscribe) {
        unsubscribe = await eventHub(services).subscribe('now', {
          types: new Set(['command_created', 'command_requeued']),
          onEvent: (ev) => {
            if (ev.agent_id === agentId) wake?.()
          },
        })
        continue // work may have arrived while subscribing
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t)
          options.signal?.removeEventListener('abort', done)
          resolve()
        }
        const t = setTimeout(done, Math.min(1000, Math.max(0, deadline - Date.now())))
        wake = done
        options.signal?.addEventListener('abort', done, { once: true })
      })
      wake = undefined
    }
  } finally {
    unsubscribe?.()
  }
}

type Finish = { kind: 'complete'; body: CompleteBody } | { kind: 'fail'; body: FailBody }

/**
 * Completes or fails a command. Only the agent's owner (or an operator or admin) may; a finished command
 * answers 409; a stale lease token answers 409 (the command went back to the queue and maybe to another agent).
 * An agent that learned of the command from Redis may finish it straight from `queued`.
 */
export const finish = async (services: Services, user: AuthUser, id: string, op: Finish): Promise<Command> => {
  const { db } = services
  const { result: row, events } = await withEvents(db, async (tx, emit) => {
    // The command, locked, with its agent's owner: one statement.
    const [current] = await tx<Array<CommandRow & { agent_owner_id: string | null }>>`
      select c.*, a.owner_id as agent_owner_id
      from ${db.t.commands} c left join ${db.t.agents} a on a.agent_id = c.agent_id
      where c.command_id = ${id}
      for update of c`
    if (!current) throw notFound(`Command ${id}`, 'COMMAND_NOT_FOUND')
    if (!mayActFor(user, { owner_id: current.agent_owner_id })) throw forbidden('This command belongs to an agent you did not register')
    if (current.status === 'completed' || current.status === 'failed')
      throw conflict(`Command ${id} is already ${current.status}`, 'ALREADY_FINISHED')
    if (op.body.lease_token && current.status === 'dispatched' && current.lease_token !== op.body.lease_token)
      throw conflict('The lease on this command was lost; it went back to the queue', 'LEASE_LOST')
    if (op.body.lease_token && current.status === 'queued')
      throw conflict('The lease on this command ran out; it went back to the queue', 'LEASE_LOST')

    // The update goes out with the event and the COMMIT in one write: the event says what the update
    // does (status, and the fields it keeps), so it need not wait for the row to come back.
    const last = (update: Promise<CommandRow[]>) => deferred(update.then((rows) => rows[0]!))
    if (op.kind === 'complete') {
      emit(commandEvent('command_completed', { ...current, status: 'completed' }, user.username))
      return last(tx<CommandRow[]>`
        update ${db.t.commands} set status = 'completed', result = ${op.body.result ?? null},
          data = ${op.body.data === undefined ? null : tx.json(op.body.data as never)},
          lease_token = null, lease_expires_at = null, finished_at = now(), updated_at = now()
        where command_id = ${id} returning *`.execute())
    }
    const retry = op.body.retry === true && current.attempts < current.max_attempts
    if (retry) {
      emit(commandEvent('command_requeued', { ...current, status: 'queued' }, user.username, { reason: 'failed', error: op.body.error }))
      return last(tx<CommandRow[]>`
        update ${db.t.commands} set status = 'queued', error = ${op.body.error},
          available_at = now() + make_interval(secs => ${backoffSeconds(current.attempts)}),
          lease_token = null, lease_expires_at = null, updated_at = now()
        where command_id = ${id} returning *`.execute())
    }
    emit(commandEvent('command_failed', { ...current, status: 'failed' }, user.username, { error: op.body.error }))
    return last(tx<CommandRow[]>`
      update ${db.t.commands} set status = 'failed', error = ${op.body.error},
        lease_token = null, lease_expires_at = null, finished_at = now(), updated_at = now()
      where command_id = ${id} returning *`.execute())
  })
  const command = toCommand(row)
  // Not cached here: the first GET caches it (read-through), which spares every completion a bus write.
  if (op.kind === 'fail' && row.status === 'queued') cortexMetrics(services).retries.inc()
  await afterCommit(services, events)
  return command
}

const lockCommand = async (tx: TxSql, db: Db, id: string) => {
  const [row] = await tx<CommandRow[]>`select * from ${db.t.commands} where command_id = ${id} for update`
  if (!row) throw notFound(`Command ${id}`, 'COMMAND_NOT_FOUND')
  return row
}

/** Puts a failed (dead-lettered) command back in the queue with fresh attempts. */
export const retryCommand = async (services: Services, user: AuthUser, id: string): Promise<Command> => {
  const { db } = services
  const { result: row, events } = await withEvents(db, async (tx, emit) => {
    const current = await lockCommand(tx, db, id)
    if (current.status !== 'failed') throw conflict(`Only a failed command can be retried; this one is ${current.status}`, 'NOT_FAILED')
    const [again] = await tx<CommandRow[]>`
      update ${db.t.commands} set status = 'queued', attempts = 0, error = null, available_at = now(),
        finished_at = null, updated_at = now()
      where command_id = ${id} returning *`
    await emit(commandEvent('command_requeued', again!, user.username, { reason: 'retry' }))
    return again!
  })
  await services.bus.del(cacheKey(id)).catch(() => undefined)
  await afterCommit(services, events)
  return toCommand(row)
}

/**
 * Returns commands whose lease ran out to the queue (with backoff), or fails them for good after
 * `max_attempts`. Returns how many it moved.
 */
export const requeueExpired = async (services: Services): Promise<number> => {
  const { db } = services
  const { result: rows, events } = await withEvents(db, async (tx, emit) => {
    const moved = await tx<CommandRow[]>`
      update ${db.t.commands} c set
        status = case when c.attempts >= c.max_attempts then 'failed' else 'queued' end,
        error = case when c.attempts >= c.max_attempts
                     then 'lease expired on every attempt (' || c.attempts || ' of ' || c.max_attempts || ')' else c.error end,
        finished_at = case when c.attempts >= c.max_attempts then now() else null end,
        available_at = now() + make_interval(secs => least(power(2, greatest(c.attempts, 1)), 300)::int),
        lease_token = null, lease_expires_at = null, updated_at = now()
      where c.command_id in (
        select command_id from ${db.t.commands}
        where status = 'dispatched' and lease_expires_at < now()
        order by lease_expires_at limit 200
        for update skip locked)
      returning c.*`
    for (const r of moved)
      await emit(
        r.status === 'failed'
          ? commandEvent('command_failed', r, undefined, { error: r.error, reason: 'lease_expired' })
          : commandEvent('command_requeued', r, undefined, { reason: 'lease_expired' }),
      )
    return moved
  })
  if (rows.length) {
    const m = cortexMetrics(services)
    m.leaseExpiries.inc(undefined, rows.length)
    for (const r of rows) if (r.status === 'failed') await cacheFinished(services, toCommand(r))
    await afterCommit(services, events)
  }
  return rows.length
}

const lastSweep = new WeakMap<object, number>()

/** Runs the sweeps at most once a second per process (or isolate): leases, then silent agents. */
export const sweepIfDue = async (services: Services): Promise<void> => {
  // Keyed by the parsed config: one object per process, and per isolate where services are per request.
  const now = Date.now()
  if ((lastSweep.get(services.config) ?? 0) > now - 1000) return
  lastSweep.set(services.config, now)
  await requeueExpired(services)
  await markSilentAgentsOffline(services)
}

const sweepers = new WeakSet<object>()

/**
 * On a long-lived host, sweeps every few seconds in the background until shutdown, so leases expire and
 * agents go offline even when no request comes. Per-request platforms sweep inline instead.
 */
export const ensureSweeper = (services: Services, everyMs = 2000) => {
  const shutdown = services.lifecycle?.shutdown
  if (!shutdown || sweepers.has(services) || shutdown.aborted) return
  sweepers.add(services)
  const timer = setInterval(() => {
    sweepIfDue(services).catch((err) => services.log.warn('sweep failed', { err }))
  }, everyMs)
  ;(timer as { unref?: () => void }).unref?.()
  shutdown.addEventListener('abort', () => clearInterval(timer), { once: true })
}
