/**
 * The event hub: one per process (Node) or per connection (workerd). It follows the event log in id
 * order, woken by `nexus:events` on the bus and by a poll as a safety net, and fans events out to
 * listeners. A listener resumes after any id: it reads the log up to the present, then goes live,
 * so it sees every event exactly once, in order, across reconnects and bus outages.
 */
import type { Services } from '../services.ts'
import { EVENTS_CHANNEL, lastEventId, listEvents, toWire, type EventRow, type WireEvent } from './events.ts'

export interface HubListener {
  /** Called for each event after the listener's cursor, in id order. */
  onEvent(event: WireEvent): void
  /** Only these types (all when absent). */
  types?: Set<string>
}

export interface EventHub {
  /**
   * Catches up from `after` and then delivers live events; resolves once caught up. Returns an
   * unsubscribe. `'now'`: only events after the hub's head, nothing from the log.
   */
  subscribe(after: number | 'now', listener: HubListener): Promise<() => void>
  /**
   * Hands over events this process just committed. Ids are assigned in commit order, so events that
   * follow the hub's head go out at once, without a log read. Offers from concurrent requests can
   * arrive out of order: an event after a gap waits (up to {@link GAP_WAIT_MS}) for the offer that
   * fills it; a gap still open then (another process's events, an id a rolled-back insert used up)
   * is filled from the log.
   */
  offer(rows: EventRow[]): void
  close(): Promise<void>
}

interface Entry {
  listener: HubListener
  cursor: number
  live: boolean
  buffer: WireEvent[]
}

const POLL_MS = 1000
const PAGE = 500
/** How long offered events after a gap wait for the offer that fills it before the log is read. */
export const GAP_WAIT_MS = 25
/** Offered events held at most; past this the log is read at once. */
const MAX_PENDING = 10_000

/** Creates a hub over the services' database and bus. It runs only while it has listeners. */
export const createEventHub = (services: Pick<Services, 'db' | 'bus' | 'log'>, pollMs = POLL_MS): EventHub => {
  const { db, bus, log } = services
  const entries = new Set<Entry>()
  let head = -1 // the last id this hub has read from the log; -1 until started
  let started: Promise<void> | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  let unsubscribeBus: (() => Promise<void>) | undefined
  let reading: Promise<void> | undefined
  let again = false
  // Offered events after a gap, by id, until the gap fills (an earlier offer, or a log read).
  const pending = new Map<number, EventRow>()
  let gapTimer: ReturnType<typeof setTimeout> | undefined

  const deliver = (entry: Entry, ev: WireEvent) => {
    if (ev.id <= entry.cursor) return
    entry.cursor = ev.id
    if (entry.listener.types && !entry.listener.types.has(ev.type)) return
    try {
      entry.listener.onEvent(ev)
    } catch (err) {
      log.warn('event listener failed', { err })
    }
  }

  // Hands one event, the next after `head`, to every listener (buffered for those still catching up).
  const publish = (ev: WireEvent) => {
    if (ev.id <= head) return // an offer delivered it while this read was in flight
    head = ev.id
    for (const e of entries) {
      if (e.live) deliver(e, ev)
      else e.buffer.push(ev)
    }
  }

  // Publishes the offered events that now follow the head; the rest wait for their gap, within bounds.
  const drainPending = () => {
    for (let next = pending.get(head + 1); next; next = pending.get(head + 1)) {
      pending.delete(head + 1)
      publish(toWire(next))
    }
    for (const id of pending.keys()) if (id <= head) pending.delete(id)
    if (pending.size === 0) {
      clearTimeout(gapTimer)
      gapTimer = undefined
    } else if (pending.size > MAX_PENDING) void read()
    else
      gapTimer ??= setTimeout(() => {
        gapTimer = undefined
        if (pending.size > 0) void read()
      }, GAP_WAIT_MS)
  }

  // Reads the log past `head` and hands each event to every live listener; coalesces concurrent calls.
  const read = (): Promise<void> => {
    if (reading) {
      again = true
      return reading
    }
    reading = (async () => {
      do {
        again = false
        for (;;) {
          const rows = await listEvents(db, { after: head, limit: PAGE })
          for (const row of rows) publish(toWire(row))
          if (rows.length < PAGE) break
        }
      } while (again)
    })()
      .catch((err) => log.warn('event log read failed; retrying on the next poll', { err }))
      .finally(() => {
        reading = undefined
        drainPending()
      })
    return reading
  }

  const start = () =>
    (started ??= (async () => {
      head = await lastEventId(db)
      timer = setInterval(() => void read(), pollMs)
      try {
        const sub = await bus.subscribe([EVENTS_CHANNEL], (_channel, message) => {
          // The doorbell names its event: one this hub already has (its own, offered) needs no read.
          let id: unknown
          try {
            id = (JSON.parse(message) as { id?: unknown }).id
          } catch {
            // not an event: read anyway
          }
          if (typeof id === 'number' && (id <= head || pending.has(id))) return
          void read()
        })
        unsubscribeBus = () => sub.close()
      } catch (err) {
        // Without the bus, the poll alone keeps listeners current (within pollMs).
        log.warn('event bus subscription failed; following the log by polling', { err })
      }
    })().catch((err) => {
      started = undefined
      throw err
    }))

  const stop = async () => {
    if (!started) return
    clearInterval(timer)
    timer = undefined
    clearTimeout(gapTimer)
    gapTimer = undefined
    pending.clear()
    const unsub = unsubscribeBus
    unsubscribeBus = undefined
    started = undefined
    head = -1
    await unsub?.().catch(() => undefined)
  }

  return {
    async subscribe(after, listener) {
      await start()
      const entry: Entry = { listener, cursor: after === 'now' ? head : Math.max(0, after), live: false, buffer: [] }
      entries.add(entry)
      try {
        // Catch up from the log up to (at least) the hub's head; live events meanwhile are buffered.
        for (;;) {
          const rows = await listEvents(db, { after: entry.cursor, limit: PAGE })
          for (const row of rows) deliver(entry, toWire(row))
          if (rows.length < PAGE && entry.cursor >= head) break
          if (rows.length === 0) break
        }
        entry.live = true
        for (const ev of entry.buffer.splice(0)) deliver(entry, ev)
      } catch (err) {
        entries.delete(entry)
        throw err
      }
      return () => {
        entries.delete(entry)
        if (entries.size === 0) void stop()
      }
    },
    offer(rows) {
      if (!started || head < 0 || rows.length === 0) return
      for (const row of rows) if (Number(row.id) > head) pending.set(Number(row.id), row)
      // While the log is being read, what it returns goes first; the read drains these when it ends.
      if (!reading) drainPending()
    },
    async close() {
      entries.clear()
      await stop()
    },
  }
}

const hubs = new WeakMap<object, EventHub>()

/**
 * The hub for these services: shared by every request of a long-lived host (the services object is
 * the same), one per request where services are made per request.
 */
export const eventHub = (services: Services): EventHub => {
  let hub = hubs.get(services)
  if (!hub) {
    hub = createEventHub(services)
    hubs.set(services, hub)
  }
  return hub
}
