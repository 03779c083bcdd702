/**
 * Live events: WebSocket GET /api/v1/events/ws and SSE GET /api/v1/events/stream. Token as Bearer or
 * `?token=` (browsers). Resume with `?after=<id>` (SSE also `Last-Event-ID`): every event after it, in
 * order, exactly once. Without either, the stream starts at the present.
 */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, parseWith, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth } from '../lib/auth/middleware.ts'
import { ensureSweeper, sweepIfDue } from '../lib/cortex/commands.ts'
import { lastEventId, type WireEvent } from '../lib/cortex/events.ts'
import { eventHub } from '../lib/cortex/hub.ts'
import { badRequest } from '../lib/errors.ts'
import type { Services } from '../lib/services.ts'
import { upgradeWebSocket } from '../lib/ws.ts'

export const LiveQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  type: z
    .string()
    .max(1000)
    .optional()
    .transform((t) => (t ? new Set(t.split(',').map((s) => s.trim()).filter(Boolean)) : undefined)),
  token: z.string().optional(),
})

/** A client this far behind is cut off (it reconnects with `after` and loses nothing). */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024
const MAX_QUEUED_FRAMES = 10_000
const KEEPALIVE_MS = 15_000

const startingPoint = async (services: Services, after: number | undefined, lastId: string | undefined) => {
  if (after !== undefined) return after
  if (lastId !== undefined) {
    if (!/^\d{1,15}$/.test(lastId)) throw badRequest('Last-Event-ID must be an event id', 'Last-Event-ID')
    return Number(lastId)
  }
  return lastEventId(services.db)
}

/**
 * Leases and agent liveness are swept in the background on a long-lived host; where services are per
 * request (workerd), an open live stream drives the sweeps while it lasts. Returns a stop function.
 */
const keepSweeping = (services: Services): (() => void) => {
  ensureSweeper(services)
  if (services.lifecycle) return () => undefined
  const timer = setInterval(() => {
    sweepIfDue(services).catch((err) => services.log.warn('sweep failed', { err }))
  }, 2000)
  return () => clearInterval(timer)
}

const deferred = () => {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

const app = new Hono<AppEnv>()
  .get('/api/v1/events/ws', requireAuth({ allowQueryToken: true }), async (c) => {
    const { services } = c.var
    const user = authUser(c)
    const q = parseWith(LiveQuery, c.req.query())
    const after = await startingPoint(services, q.after, undefined)
    const hub = eventHub(services)
    const closed = deferred()
    let unsubscribe: (() => void) | undefined
    let gone = false
    const timers: Array<ReturnType<typeof setTimeout>> = []
    const detach: Array<() => void> = []
    const cleanup = () => {
      gone = true
      unsubscribe?.()
      for (const t of timers) clearTimeout(t)
      for (const fn of detach) fn()
      closed.resolve()
    }
    const response = await upgradeWebSocket(c.req.raw, services.websocket, {
      onOpen(ws) {
        detach.push(keepSweeping(services))
        const send = (ev: WireEvent) => {
          if (ws.bufferedAmount > MAX_BUFFERED_BYTES) ws.close(1013, 'too far behind: reconnect with ?after=')
          else ws.send(JSON.stringify(ev))
        }
        hub
          .subscribe(after, { types: q.type, onEvent: send })
          .then((unsub) => (gone ? unsub() : (unsubscribe = unsub)))
          .catch(() => ws.close(1011, 'the event log is unavailable; retry'))
        // The connection lives no longer than the token that opened it.
        timers.push(setTimeout(() => ws.close(4001, 'token expired'), Math.max(0, user.exp * 1000 - Date.now())))
        const shutdown = () => ws.close(1001, 'server shutting down')
        services.lifecycle?.shutdown.addEventListener('abort', shutdown, { once: true })
        detach.push(() => services.lifecycle?.shutdown.removeEventListener('abort', shutdown))
      },
      onMessage(data, ws) {
        // Application-level keep-alive for clients that cannot send protocol pings (browsers).
        if (data === 'ping' || data === '{"type":"ping"}') ws.send('{"type":"pong"}')
      },
      onClose: cleanup,
    })
    services.keepOpenUntil?.(closed.promise)
    return response
  })
  .get('/api/v1/events/stream', requireAuth({ allowQueryToken: true }), async (c) => {
    const { services } = c.var
    const user = authUser(c)
    const q = parseWith(LiveQuery, c.req.query())
    const after = await startingPoint(services, q.after, c.req.header('last-event-id'))
    const hub = eventHub(services)
    const encoder = new TextEncoder()
    const closed = deferred()
    let cleanup = () => closed.resolve()

    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        let open = true
        const timers: Array<ReturnType<typeof setTimeout> | ReturnType<typeof setInterval>> = []
        let unsubscribe: (() => void) | undefined
        cleanup = () => {
          if (!open) return
          open = false
          unsubscribe?.()
          for (const t of timers) clearInterval(t)
          stopSweeping()
          services.lifecycle?.shutdown.removeEventListener('abort', end)
          closed.resolve()
        }
        const end = () => {
          if (!open) return
          cleanup()
          try {
            controller.close()
          } catch {
            // already closed by the client
          }
        }
        const send = (text: string) => {
          if (!open) return
          if ((controller.desiredSize ?? 0) < -MAX_QUEUED_FRAMES) return end()
          try {
            controller.enqueue(encoder.encode(text))
          } catch {
            cleanup()
          }
        }
        const stopSweeping = keepSweeping(services)
        send('retry: 2000\n\n')
        timers.push(setInterval(() => send(': keep-alive\n\n'), KEEPALIVE_MS))
        timers.push(setTimeout(end, Math.max(0, user.exp * 1000 - Date.now())))
        services.lifecycle?.shutdown.addEventListener('abort', end, { once: true })
        try {
          const unsub = await hub.subscribe(after, {
            types: q.type,
            onEvent: (ev) => send(`id: ${ev.id}\ndata: ${JSON.stringify(ev)}\n\n`),
          })
          if (open) unsubscribe = unsub
          else unsub()
        } catch {
          send('event: error\ndata: {"message":"the event log is unavailable; reconnect"}\n\n')
          end()
        }
      },
      cancel() {
        cleanup()
      },
    })
    services.keepOpenUntil?.(closed.promise)
    return new Response(stream, {
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
      },
    })
  })

export default defineFunction('cortex-events-live', app)
