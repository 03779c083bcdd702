/** Commands: POST /api/v1/commands (operators), GET /api/v1/commands[/:id], POST /api/v1/commands/:id/retry. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, parseWith, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth, requireRole } from '../lib/auth/middleware.ts'
import { AgentId } from '../lib/cortex/agents.ts'
import {
  CommandId,
  CreateBody,
  createCommand,
  decodeCursor,
  ensureSweeper,
  getCommand,
  listCommands,
  retryCommand,
} from '../lib/cortex/commands.ts'

export const ListQuery = z.object({
  status: z.enum(['queued', 'dispatched', 'completed', 'failed']).optional(),
  agent_id: AgentId.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(64).optional(),
})
export const Params = z.object({ id: CommandId })

const app = new Hono<AppEnv>()
  .post('/api/v1/commands', requireRole('operator'), async (c) => {
    ensureSweeper(c.var.services)
    const body = await jsonBody(c, CreateBody)
    const command = await createCommand(c.var.services, authUser(c), body)
    return c.json(command, 201, { location: `/api/v1/commands/${command.command_id}` })
  })
  .get('/api/v1/commands', requireAuth(), async (c) => {
    const q = parseWith(ListQuery, c.req.query())
    return c.json(
      await listCommands(c.var.services.db, { ...q, cursor: q.cursor === undefined ? undefined : decodeCursor(q.cursor) }),
    )
  })
  .get('/api/v1/commands/:id', requireAuth(), async (c) => {
    const { id } = parseWith(Params, c.req.param())
    return c.json(await getCommand(c.var.services, id))
  })
  .post('/api/v1/commands/:id/retry', requireRole('operator'), async (c) => {
    const { id } = parseWith(Params, c.req.param())
    return c.json(await retryCommand(c.var.services, authUser(c), id))
  })

export default defineFunction('cortex-commands', app)
