/** An agent's key-value state: GET/PUT/DELETE /api/v1/agents/:agent_id/state[/:key]. Owners write; anyone signed in reads. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, parseWith, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth } from '../lib/auth/middleware.ts'
import {
  AgentId,
  agentForActor,
  deleteStateKey,
  getAgent,
  getState,
  getStateKey,
  putStateKey,
  StateKey,
} from '../lib/cortex/agents.ts'
import { safeJson } from '../lib/cortex/text.ts'
import { notFound } from '../lib/errors.ts'

export const AgentParams = z.object({ agent_id: AgentId })
export const KeyParams = z.object({ agent_id: AgentId, key: StateKey })
export const PutBody = z.object({ value: safeJson(64 * 1024).refine((v) => v !== undefined, 'value is required') })

const app = new Hono<AppEnv>()
  .get('/api/v1/agents/:agent_id/state', requireAuth(), async (c) => {
    const { agent_id } = parseWith(AgentParams, c.req.param())
    if (!(await getAgent(c.var.services, agent_id))) throw notFound(`Agent "${agent_id}"`, 'AGENT_NOT_FOUND')
    return c.json({ agent_id, state: await getState(c.var.services.db, agent_id) })
  })
  .get('/api/v1/agents/:agent_id/state/:key', requireAuth(), async (c) => {
    const { agent_id, key } = parseWith(KeyParams, c.req.param())
    const row = await getStateKey(c.var.services.db, agent_id, key)
    if (!row) throw notFound(`State key "${key}" of agent "${agent_id}"`, 'STATE_NOT_FOUND')
    return c.json({ key, value: row.value, updated_at: new Date(row.updated_at).toISOString() })
  })
  .put('/api/v1/agents/:agent_id/state/:key', requireAuth(), async (c) => {
    const { agent_id, key } = parseWith(KeyParams, c.req.param())
    await agentForActor(c.var.services, authUser(c), agent_id)
    const { value } = await jsonBody(c, PutBody)
    const row = await putStateKey(c.var.services.db, agent_id, key, value)
    return c.json({ key: row.key, value: row.value, updated_at: new Date(row.updated_at).toISOString() })
  })
  .delete('/api/v1/agents/:agent_id/state/:key', requireAuth(), async (c) => {
    const { agent_id, key } = parseWith(KeyParams, c.req.param())
    await agentForActor(c.var.services, authUser(c), agent_id)
    if (!(await deleteStateKey(c.var.services.db, agent_id, key)))
      throw notFound(`State key "${key}" of agent "${agent_id}"`, 'STATE_NOT_FOUND')
    return c.body(null, 204)
  })

export default defineFunction('cortex-agent-state', app)
