/** Routing rules: which agent gets a command that names none. Lowest priority number first, then oldest rule. */
import * as z from 'zod'
import type { Db, TxSql } from '../db/index.ts'
import { badRequest, notFound } from '../errors.ts'
import { AgentId } from './agents.ts'
import { safeText } from './text.ts'

export const RuleBody = z
  .object({
    name: safeText(200, 1),
    pattern: safeText(1000).nullable().optional(),
    capability: z.string().regex(/^[a-z0-9][a-z0-9_.:-]{0,63}$/, 'capabilities are lower-case words').nullable().optional(),
    agent_id: AgentId.nullable().optional(),
    priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
    enabled: z.boolean().optional(),
  })
  .refine((r) => r.capability || r.agent_id, { message: 'a rule needs a capability or an agent_id', path: ['capability'] })
export type RuleBody = z.infer<typeof RuleBody>

export interface RuleRow {
  id: number
  name: string
  pattern: string | null
  capability: string | null
  agent_id: string | null
  priority: number
  enabled: boolean
  created_at: Date
  updated_at: Date
}

export const toRule = (r: RuleRow) => ({
  id: Number(r.id),
  name: r.name,
  pattern: r.pattern,
  capability: r.capability,
  agent_id: r.agent_id,
  priority: r.priority,
  enabled: r.enabled,
  created_at: new Date(r.created_at).toISOString(),
  updated_at: new Date(r.updated_at).toISOString(),
})

/** Refuses a pattern PostgreSQL cannot compile, so a bad rule fails at creation rather than at routing. */
const checkPattern = async (db: Db, pattern: string | null | undefined) => {
  if (!pattern) return
  try {
    await db.sql`select '' ~* ${pattern}`
  } catch {
    throw badRequest('pattern is not a valid regular expression', 'pattern')
  }
}

const checkAgent = async (db: Db, agentId: string | null | undefined) => {
  if (!agentId) return
  const [row] = await db.sql`select 1 from ${db.t.agents} where agent_id = ${agentId}`
  if (!row) throw badRequest(`agent_id: agent "${agentId}" is not registered`, 'agent_id')
}

export const listRules = async (db: Db) =>
  (await db.sql<RuleRow[]>`select * from ${db.t.routing_rules} order by priority, id`).map(toRule)

export const createRule = async (db: Db, body: RuleBody) => {
  await checkPattern(db, body.pattern)
  await checkAgent(db, body.agent_id)
  const [row] = await db.sql<RuleRow[]>`
    insert into ${db.t.routing_rules} (name, pattern, capability, agent_id, priority, enabled)
    values (${body.name}, ${body.pattern ?? null}, ${body.capability ?? null}, ${body.agent_id ?? null},
            ${body.priority ?? 100}, ${body.enabled ?? true})
    returning *`
  return toRule(row!)
}

export const updateRule = async (db: Db, id: number, body: RuleBody) => {
  await checkPattern(db, body.pattern)
  await checkAgent(db, body.agent_id)
  const [row] = await db.sql<RuleRow[]>`
    update ${db.t.routing_rules} set name = ${body.name}, pattern = ${body.pattern ?? null},
      capability = ${body.capability ?? null}, agent_id = ${body.agent_id ?? null},
      priority = ${body.priority ?? 100}, enabled = ${body.enabled ?? true}, updated_at = now()
    where id = ${id} returning *`
  if (!row) throw notFound(`Routing rule ${id}`)
  return toRule(row)
}

export const deleteRule = async (db: Db, id: number) => {
  const rows = await db.sql`delete from ${db.t.routing_rules} where id = ${id} returning id`
  if (rows.length === 0) throw notFound(`Routing rule ${id}`)
}

/**
 * Picks the agent for `text`: the first enabled rule whose pattern matches (or has none) and that has a
 * target. A rule's agent_id is its target; else among agents with its capability, online ones first,
 * then the one with the least open work.
 */
export const route = async (tx: TxSql, db: Db, text: string, ttl: number): Promise<{ agentId: string; ruleId: number } | undefined> => {
  const [row] = await tx<{ rule_id: number; target: string }[]>`
    select r.id as rule_id, t.agent_id as target
    from ${db.t.routing_rules} r
    cross join lateral (
      select a.agent_id from ${db.t.agents} a
      where (r.agent_id is not null and a.agent_id = r.agent_id)
         or (r.agent_id is null and r.capability = any(a.capabilities))
      order by (a.last_seen_at > now() - make_interval(secs => ${ttl})) desc,
               (select count(*) from ${db.t.commands} c
                 where c.agent_id = a.agent_id and c.status in ('queued', 'dispatched')) asc,
               a.agent_id
      limit 1) t
    where r.enabled and (r.pattern is null or ${text} ~* r.pattern)
    order by r.priority, r.id
    limit 1`
  return row ? { agentId: row.target, ruleId: Number(row.rule_id) } : undefined
}
