/** Agents: registration (idempotent), liveness from heartbeats, ownership, and their key-value state. */
import * as z from 'zod'
import type { AuthUser } from '../auth/types.ts'
import type { Db } from '../db/index.ts'
import { forbidden, notFound } from '../errors.ts'
import type { Services } from '../services.ts'
import { TtlCache, scopedState } from '../state.ts'
import { publishEvents, withEvents, type EventRow } from './events.ts'
import { eventHub } from './hub.ts'
import { safeJson, safeText } from './text.ts'

/** What agent functions need: the database, and the config for NEXUS_AGENT_TTL (the seed's 60 s status TTL). */
export type Scope = Pick<Services, 'db' | 'config'>

/** An agent counts as online for this many seconds after its last sign of life. */
export const agentTtl = (s: Pick<Services, 'config'>) => s.config.NEXUS_AGENT_TTL

export const AgentId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'must be 1-128 of A-Z a-z 0-9 _ . : - starting with a letter or digit')

export const RegisterBody = z.object({
  agent_id: AgentId,
  name: safeText(200).optional(),
  capabilities: z.array(z.string().regex(/^[a-z0-9][a-z0-9_.:-]{0,63}$/, 'capabilities are lower-case words')).max(64).optional(),
  metadata: safeJson(16 * 1024).optional(),
})
export type RegisterBody = z.infer<typeof RegisterBody>

interface AgentRow {
  agent_id: string
  name: string
  capabilities: string[]
  metadata: Record<string, unknown>
  owner_id: string | null
  status: string
  registered_at: Date
  last_seen_at: Date
  online: boolean
}

export interface Agent {
  agent_id: string
  name: string
  status: 'online' | 'offline'
  capabilities: string[]
  metadata: Record<string, unknown>
  owner_id: string | null
  registered_at: string
  last_seen_at: string
}

export const toAgent = (row: AgentRow): Agent => ({
  agent_id: row.agent_id,
  name: row.name,
  status: row.online ? 'online' : 'offline',
  capabilities: row.capabilities,
  metadata: row.metadata,
  owner_id: row.owner_id,
  registered_at: new Date(row.registered_at).toISOString(),
  last_seen_at: new Date(row.last_seen_at).toISOString(),
})

const statusKey = (agentId: string) => `agent:status:${agentId}`

// `online` is computed from last_seen_at, so a listing is right even before the sweeper runs.
const selectAgents = (db: Db, ttl: number) =>
  db.sql`select *, last_seen_at > now() - make_interval(secs => ${ttl}) as online from ${db.t.agents}`

export const getAgent = async ({ db, config }: Scope, agentId: string): Promise<Agent | undefined> => {
  const [row] = await db.sql<AgentRow[]>`${selectAgents(db, config.NEXUS_AGENT_TTL)} where agent_id = ${agentId}`
  return row ? toAgent(row) : undefined
}

export const listAgents = async (
  { db, config }: Scope,
  filter: { status?: 'online' | 'offline'; capability?: string },
): Promise<Agent[]> => {
  const ttl = config.NEXUS_AGENT_TTL
  const rows = await db.sql<AgentRow[]>`
    ${selectAgents(db, ttl)}
    where true
    ${filter.capability ? db.sql`and ${filter.capability} = any(capabilities)` : db.sql``}
    ${filter.status === 'online' ? db.sql`and last_seen_at > now() - make_interval(secs => ${ttl})` : db.sql``}
    ${filter.status === 'offline' ? db.sql`and last_seen_at <= now() - make_interval(secs => ${ttl})` : db.sql``}
    order by agent_id
    limit 1000`
  return rows.map(toAgent)
}

/** Admin and operators act on any agent; a user with only the `agent` role, on the agents it registered. */
export const mayActFor = (user: AuthUser, agent: { owner_id: string | null }) =>
  user.roles.includes('admin') || user.roles.includes('operator') || agent.owner_id === user.sub

/** The agent, or 404; and 403 when the user may not act for it. */
export const agentForActor = async (scope: Scope, user: AuthUser, agentId: string): Promise<Agent> => {
  const agent = await getAgent(scope, agentId)
  if (!agent) throw notFound(`Agent "${agentId}"`, 'AGENT_NOT_FOUND')
  if (!mayActFor(user, agent)) throw forbidden(`You did not register agent "${agentId}"`)
  return agent
}

/** How long this process trusts an agent's owner it has read (an owner is set once, at registration). */
export const OWNER_CACHE_MS = 60_000

/**
 * 404 for an unknown agent, 403 when the user may not act for it: {@link agentForActor} without the
 * agent itself, for the hot path of claims. An agent's owner is set at its first registration and
 * never changes (its user's deletion clears it), so this process keeps it for {@link OWNER_CACHE_MS}.
 */
export const assertMayActForAgent = async (services: Services, user: AuthUser, agentId: string): Promise<void> => {
  const owners = scopedState(services, 'cortex.owners', () => new TtlCache<{ owner_id: string | null }>(OWNER_CACHE_MS, 10_000))
  let known = owners.get(agentId)
  if (!known) {
    const [row] = await services.db.sql<{ owner_id: string | null }[]>`
      select owner_id from ${services.db.t.agents} where agent_id = ${agentId}`
    if (!row) throw notFound(`Agent "${agentId}"`, 'AGENT_NOT_FOUND')
    owners.set(agentId, (known = row))
  }
  if (!mayActFor(user, known)) throw forbidden(`You did not register agent "${agentId}"`)
}

/**
 * Registers an agent, or updates it when it is already known (only its owner, an operator or an admin
 * may). Returns whether it was new. Emits `agent_registered`, and `agent_status` online when it was offline.
 */
export const registerAgent = async (
  services: Services,
  user: AuthUser,
  body: RegisterBody,
): Promise<{ agent: Agent; created: boolean }> => {
  const { db } = services
  const ttl = agentTtl(services)
  const { result, events } = await withEvents(db, async (tx, emit) => {
    const [existing] = await tx<AgentRow[]>`
      select *, last_seen_at > now() - make_interval(secs => ${ttl}) as online
      from ${db.t.agents} where agent_id = ${body.agent_id} for update`
    if (existing && !mayActFor(user, existing)) throw forbidden(`Agent "${body.agent_id}" is registered by another user`)
    const [row] = await tx<AgentRow[]>`
      insert into ${db.t.agents} (agent_id, name, capabilities, metadata, owner_id, status, last_seen_at)
      values (${body.agent_id}, ${body.name ?? body.agent_id}, ${body.capabilities ?? []},
              ${tx.json((body.metadata ?? {}) as never)}, ${user.sub}, 'online', now())
      on conflict (agent_id) do update set
        name = coalesce(${body.name ?? null}, ${db.t.agents}.name),
        capabilities = coalesce(${body.capabilities ?? null}, ${db.t.agents}.capabilities),
        metadata = coalesce(${body.metadata ? tx.json(body.metadata as never) : null}, ${db.t.agents}.metadata),
        status = 'online',
        last_seen_at = now(),
        updated_at = now()
      returning *, true as online`
    const agent = toAgent(row!)
    if (!existing) {
      await emit({ type: 'agent_registered', agent_id: agent.agent_id, actor: user.username, payload: { agent } })
    } else if (!existing.online || existing.status !== 'online') {
      await emit({ type: 'agent_status', agent_id: agent.agent_id, actor: user.username, payload: { status: 'online', agent } })
    }
    return { agent, created: !existing }
  })
  await afterAgentChange(services, result.agent.agent_id, events)
  return result
}

const afterAgentChange = async (services: Services, agentId: string, events: EventRow[]) => {
  await services.bus.set(statusKey(agentId), 'online', { ttlSeconds: agentTtl(services) }).catch(() => undefined)
  eventHub(services).offer(events)
  await publishEvents(services, events)
}

/**
 * Records a sign of life. Writes at most once every 10 s per agent to the database (a claim storm must
 * not become a write storm); an offline agent coming back emits `agent_status` online.
 */
export const touchAgent = async (services: Services, agentId: string, force = false): Promise<void> => {
  const { db, bus } = services
  const ttl = agentTtl(services)
  const windowSeconds = Math.min(10, Math.max(1, Math.floor(ttl / 3)))
  // A recent write makes this one unnecessary: skip the transaction altogether (claims call this often).
  // This process's own memory answers first; the bus's key covers the other processes.
  const touched = scopedState(services, 'cortex.touched', () => new TtlCache<true>(windowSeconds * 1000, 10_000))
  if (!force && touched.get(agentId)) return
  const recent = `agent:touched:${agentId}`
  if (!force && (await bus.get(recent).catch(() => null))) return
  touched.set(agentId, true)
  await bus.set(recent, '1', { ttlSeconds: windowSeconds }).catch(() => false)
  const { events } = await withEvents(db, async (tx, emit) => {
    const [row] = await tx<{ was_online: boolean; status: string }[]>`
      update ${db.t.agents} a set last_seen_at = now(), status = 'online'
      from (select agent_id, status as old_status,
                   last_seen_at > now() - make_interval(secs => ${ttl}) as was_online
            from ${db.t.agents} where agent_id = ${agentId} for update) old
      where a.agent_id = old.agent_id
        and (${force} or a.last_seen_at < now() - make_interval(secs => ${windowSeconds}) or old.old_status <> 'online')
      returning old.was_online, old.old_status as status`
    if (row && (!row.was_online || row.status !== 'online'))
      await emit({ type: 'agent_status', agent_id: agentId, payload: { status: 'online' } })
  })
  await afterAgentChange(services, agentId, events)
}

/**
 * Marks agents silent for longer than NEXUS_AGENT_TTL offline, emitting `agent_status` offline for each.
 * Called by the sweeper; cheap when nothing changed.
 */
export const markSilentAgentsOffline = async (services: Services): Promise<number> => {
  const { db } = services
  const ttl = agentTtl(services)
  const { events } = await withEvents(db, async (tx, emit) => {
    const rows = await tx<{ agent_id: string }[]>`
      update ${db.t.agents} set status = 'offline', updated_at = now()
      where agent_id in (
        select agent_id from ${db.t.agents}
        where status = 'online' and last_seen_at <= now() - make_interval(secs => ${ttl})
        limit 500 for update skip locked)
      returning agent_id`
    for (const r of rows) await emit({ type: 'agent_status', agent_id: r.agent_id, payload: { status: 'offline' } })
    return rows.length
  })
  if (events.length) {
    for (const e of events) await services.bus.del(statusKey(e.agent_id!)).catch(() => undefined)
    eventHub(services).offer(events)
    await publishEvents(services, events)
  }
  return events.length
}

// ---- agent_state: the agent's own key-value state ----

export const StateKey = z.string().min(1).max(256).regex(/^[^\u0000-\u001f]+$/, 'must not contain control characters')

export const getState = async (db: Db, agentId: string) => {
  const rows = await db.sql<{ key: string; value: unknown; updated_at: Date }[]>`
    select key, value, updated_at from ${db.t.agent_state} where agent_id = ${agentId} order by key`
  return Object.fromEntries(rows.map((r) => [r.key, r.value]))
}

export const getStateKey = async (db: Db, agentId: string, key: string) => {
  const [row] = await db.sql<{ value: unknown; updated_at: Date }[]>`
    select value, updated_at from ${db.t.agent_state} where agent_id = ${agentId} and key = ${key}`
  return row
}

export const putStateKey = async (db: Db, agentId: string, key: string, value: unknown) => {
  const [row] = await db.sql<{ key: string; value: unknown; updated_at: Date }[]>`
    insert into ${db.t.agent_state} (agent_id, key, value) values (${agentId}, ${key}, ${db.sql.json(value as never)})
    on conflict (agent_id, key) do update set value = excluded.value, updated_at = now()
    returning key, value, updated_at`
  return row!
}

export const deleteStateKey = async (db: Db, agentId: string, key: string) => {
  const rows = await db.sql`delete from ${db.t.agent_state} where agent_id = ${agentId} and key = ${key} returning key`
  return rows.length > 0
}
