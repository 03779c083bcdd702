/** Agents: POST /api/v1/agents/register, GET /api/v1/agents[/:agent_id], POST /api/v1/agents/:agent_id/heartbeat. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, parseWith, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth, requireRole } from '../lib/auth/middleware.ts'
import { AgentId, agentForActor, getAgent, listAgents, RegisterBody, registerAgent, touchAgent } from '../lib/cortex/agents.ts'
import { ensureSweeper } from '../lib/cortex/commands.ts'
import { notFound } from '../lib/errors.ts'

export const ListQuery = z.object({
  status: z.enum(['online', 'offline']).optional(),
  capability: z.string().max(64).optional(),
})
export const Params = z.object({ agent_id: AgentId })

const app = new Hono<AppEnv>()
  .post('/api/v1/agents/register', requireRole('agent', 'operator'), async (c) => {
    ensureSweeper(c.var.services)
    const body = await jsonBody(c, RegisterBody)
    const { agent, created } = await registerAgent(c.var.services, authUser(c), body)
    return c.json(agent, created ? 201 : 200)
  })
  .get('/api/v1/agents', requireAuth(), async (c) => {
    ensureSweeper(c.var.services)
    const q = parseWith(ListQuery, c.req.query())
    return c.json({ agents: await listAgents(c.var.services, q) })
  })
  .get('/api/v1/agents/:agent_id', requireAuth(), async (c) => {
    const { agent_id } = parseWith(Params, c.req.param())
    const agent = await getAgent(c.var.services, agent_id)
    if (!agent) throw notFound(`Agent "${agent_id}"`, 'AGENT_NOT_FOUND')
    return c.json(agent)
  })
  .post('/api/v1/agents/:agent_id/heartbeat', requireAuth(), async (c) => {
    const { agent_id } = parseWith(Params, c.req.param())
    await agentForActor(c.var.services, authUser(c), agent_id)
    await touchAgent(c.var.services, agent_id, true)
    return c.json(await getAgent(c.var.services, agent_id))
  })

export default defineFunction('cortex-agents', app)
