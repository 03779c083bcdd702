/** Events: POST /api/v1/events (post your own event type), GET /api/v1/events?after=&type=&limit= (the log). */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, parseWith, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth, requireRole } from '../lib/auth/middleware.ts'
import { listEvents, publishEvents, SYSTEM_EVENT_TYPES, toWire, withEvents } from '../lib/cortex/events.ts'
import { eventHub } from '../lib/cortex/hub.ts'
import { safeJson } from '../lib/cortex/text.ts'

export const EventType = z
  .string()
  .regex(/^[a-z][a-z0-9_.:-]{0,63}$/, 'must be 1-64 of a-z 0-9 _ . : - starting with a letter')
  .refine((t) => !(SYSTEM_EVENT_TYPES as readonly string[]).includes(t), 'is a type NEXUS itself emits')

export const PostBody = z.object({ type: EventType, payload: safeJson(64 * 1024).optional() })
export const ListQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  type: z
    .string()
    .max(1000)
    .optional()
    .transform((t) => t?.split(',').map((s) => s.trim()).filter(Boolean)),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
})

const app = new Hono<AppEnv>()
  .post('/api/v1/events', requireRole('operator', 'agent'), async (c) => {
    const body = await jsonBody(c, PostBody)
    const user = authUser(c)
    const { events } = await withEvents(c.var.services.db, async (_tx, emit) =>
      emit({ type: body.type, actor: user.username, payload: { payload: body.payload ?? null } }),
    )
    eventHub(c.var.services).offer(events)
    await publishEvents(c.var.services, events)
    const [event] = events
    return c.json({ event_id: Number(event!.id), ...toWire(event!) }, 201)
  })
  .get('/api/v1/events', requireAuth(), async (c) => {
    const q = parseWith(ListQuery, c.req.query())
    const rows = await listEvents(c.var.services.db, { after: q.after, types: q.type, limit: q.limit })
    const events = rows.map(toWire)
    return c.json({ events, last_id: events.length ? events[events.length - 1]!.id : q.after })
  })

export default defineFunction('cortex-events', app)
