/** Routing rules (admin): GET/POST /api/v1/routing-rules, PUT/DELETE /api/v1/routing-rules/:id. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, parseWith, type AppEnv } from '../lib/app.ts'
import { requireRole } from '../lib/auth/middleware.ts'
import { createRule, deleteRule, listRules, RuleBody, updateRule } from '../lib/cortex/routing.ts'

export const Params = z.object({ id: z.coerce.number().int().positive('must be a rule id') })

const app = new Hono<AppEnv>()
  .get('/api/v1/routing-rules', requireRole('operator'), async (c) => c.json({ rules: await listRules(c.var.services.db) }))
  .post('/api/v1/routing-rules', requireRole('admin'), async (c) => {
    const rule = await createRule(c.var.services.db, await jsonBody(c, RuleBody))
    return c.json(rule, 201)
  })
  .put('/api/v1/routing-rules/:id', requireRole('admin'), async (c) => {
    const { id } = parseWith(Params, c.req.param())
    return c.json(await updateRule(c.var.services.db, id, await jsonBody(c, RuleBody)))
  })
  .delete('/api/v1/routing-rules/:id', requireRole('admin'), async (c) => {
    const { id } = parseWith(Params, c.req.param())
    await deleteRule(c.var.services.db, id)
    return c.body(null, 204)
  })

export default defineFunction('cortex-routing-rules', app)
