/** Cortex metrics: queue depth and agent counts read at scrape time, and counters of what happened. */
import type { Services } from '../services.ts'

/** The cortex metrics of this registry (gauges are set by readCortexGauges, at scrape time). */
export const cortexMetrics = (services: Pick<Services, 'metrics'>) => {
  const { metrics } = services
  return {
    active: metrics.gauge('cortex_active_commands', 'Commands queued or dispatched (not yet finished).'),
    depth: metrics.gauge('cortex_queue_depth', 'Commands by status.'),
    agents: metrics.gauge('cortex_agent_count', 'Registered agents, by status (online when seen in the last 60 s).'),
    events: metrics.counter('cortex_events_total', 'Events appended to the log, by type.'),
    leaseExpiries: metrics.counter('cortex_lease_expiries_total', 'Leases that ran out before the command finished.'),
    retries: metrics.counter('cortex_command_retries_total', 'Failed attempts an agent asked to retry.'),
  }
}

/**
 * Sets the queue-depth and agent gauges from the database, through the scraping request's own services.
 * Not a collector kept on the registry: on workerd the registry outlives the request, and a collector
 * would keep the first scrape's database client, whose socket belongs to that request (later scrapes
 * hung or kept the first values). A failed read leaves the gauges as they were: a scrape never fails
 * for a stale gauge.
 */
export const readCortexGauges = async (services: Pick<Services, 'metrics' | 'db' | 'config' | 'log'>) => {
  const { db } = services
  const m = cortexMetrics(services)
  const ttl = services.config.NEXUS_AGENT_TTL
  try {
    const [rows, [agents]] = await Promise.all([
      db.sql<{ status: string; n: number }[]>`select status, count(*)::int as n from ${db.t.commands} group by status`,
      db.sql<{ online: number; offline: number }[]>`
        select count(*) filter (where last_seen_at > now() - make_interval(secs => ${ttl}))::int as online,
               count(*) filter (where last_seen_at <= now() - make_interval(secs => ${ttl}))::int as offline
        from ${db.t.agents}`,
    ])
    const by = Object.fromEntries(rows.map((r) => [r.status, r.n]))
    for (const status of ['queued', 'dispatched', 'completed', 'failed']) m.depth.set(by[status] ?? 0, { status })
    m.active.set((by.queued ?? 0) + (by.dispatched ?? 0))
    m.agents.set(agents?.online ?? 0, { status: 'online' })
    m.agents.set(agents?.offline ?? 0, { status: 'offline' })
  } catch (err) {
    services.log.warn('cortex gauges not read; /metrics shows their last values', { err })
  }
}
