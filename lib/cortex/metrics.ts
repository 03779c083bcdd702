/** Cortex metrics: queue depth and agent counts read at scrape time, and counters of what happened. */
import type { Services } from '../services.ts'

const registered = new WeakSet<object>()

/** The cortex metrics of this registry; the gauges read the database when scraped. */
export const cortexMetrics = (services: Pick<Services, 'metrics' | 'db' | 'config'>) => {
  const { metrics, db } = services
  const ttl = services.config.NEXUS_AGENT_TTL
  const m = {
    active: metrics.gauge('cortex_active_commands', 'Commands queued or dispatched (not yet finished).'),
    depth: metrics.gauge('cortex_queue_depth', 'Commands by status.'),
    agents: metrics.gauge('cortex_agent_count', 'Registered agents, by status (online when seen in the last 60 s).'),
    events: metrics.counter('cortex_events_total', 'Events appended to the log, by type.'),
    leaseExpiries: metrics.counter('cortex_lease_expiries_total', 'Leases that ran out before the command finished.'),
    retries: metrics.counter('cortex_command_retries_total', 'Failed attempts an agent asked to retry.'),
  }
  if (!registered.has(metrics)) {
    registered.add(metrics)
    m.active.collect(async () => {
      const rows = await db.sql<{ status: string; n: number }[]>`
        select status, count(*)::int as n from ${db.t.commands} group by status`
      const by = Object.fromEntries(rows.map((r) => [r.status, r.n]))
      for (const status of ['queued', 'dispatched', 'completed', 'failed']) m.depth.set(by[status] ?? 0, { status })
      m.active.set((by.queued ?? 0) + (by.dispatched ?? 0))
    })
    m.agents.collect(async () => {
      const [row] = await db.sql<{ online: number; offline: number }[]>`
        select count(*) filter (where last_seen_at > now() - make_interval(secs => ${ttl}))::int as online,
               count(*) filter (where last_seen_at <= now() - make_interval(secs => ${ttl}))::int as offline
        from ${db.t.agents}`
      m.agents.set(row?.online ?? 0, { status: 'online' })
      m.agents.set(row?.offline ?? 0, { status: 'offline' })
    })
  }
  return m
}
