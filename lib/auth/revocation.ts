/**
 * Token revocation. PostgreSQL (`human_sessions.revoked_at`) is the record; the bus carries it fast:
 * a key `auth:revoked:<jti>` that lives until the token's exp, and an event on `nexus:auth`.
 *
 * Checking costs no I/O on a long-lived host: each process keeps the revoked jtis in memory, fed by the
 * bus subscription and by a sync from PostgreSQL every few seconds (so a Redis restart, or a missed
 * message, never un-revokes a token). On workerd, with no long-lived connection, a check reads the bus
 * key per request, and the isolate syncs from PostgreSQL at most every few seconds.
 */
import type { Services } from '../services.ts'
import { authSubscription, onAuthEvent, publishAuthEvent } from './events.ts'
import { CLOCK_TOLERANCE_SECONDS } from './keys.ts'
import { isLongLived, scopedState } from '../state.ts'

/** How stale the PostgreSQL view of revocations may get when the bus subscription is up. */
export const REVOCATION_SYNC_MS = 5_000
// Rows are re-read with this overlap, since a revocation committed late may carry an earlier now().
const SYNC_OVERLAP_SECONDS = 30

export const revokedKey = (jti: string) => `auth:revoked:${jti}`

interface RevocationState {
  /** jti -> exp (seconds) */
  revoked: Map<string, number>
  /** Local time (ms) the last successful sync finished; 0 before the first. */
  syncedAt: number
  /** Local time (ms) the last successful sync started: what it read is at least this recent. */
  syncStartedAt: number
  /** Database time of the last sync, the lower bound of the next one (minus the overlap). */
  watermark: Date | null
  /** When the last sync failed (ms): no new attempt for {@link REVOCATION_SYNC_MS}. */
  failedAt: number
  pending?: Promise<void>
}

const stateOf = (services: Services) =>
  scopedState<RevocationState>(services, 'revocations', () => ({
    revoked: new Map(),
    syncedAt: 0,
    syncStartedAt: 0,
    watermark: null,
    failedAt: 0,
  }))

onAuthEvent((services, event) => {
  if (event.type === 'token_revoked') stateOf(services).revoked.set(event.jti, event.exp)
})

const nowSeconds = () => Math.floor(Date.now() / 1000)

const sync = async (services: Services, st: RevocationState): Promise<void> => {
  const { sql, t } = services.db
  const startedAt = Date.now()
  const since = st.watermark ? new Date(st.watermark.getTime() - SYNC_OVERLAP_SECONDS * 1000) : new Date(0)
  // One round trip: the database's now() (the next watermark) and the revocations since the last one.
  const rows = await sql<{ jti: string | null; exp: number | null; now: Date }[]>`
    select s.jti, extract(epoch from s.expires_at)::float8 as exp, n.now
    from (select now() as now) n
    left join ${t.human_sessions} s
      on s.revoked_at is not null and s.expires_at > n.now and s.revoked_at >= ${since}`
  for (const r of rows) if (r.jti !== null && r.exp !== null) st.revoked.set(r.jti, Math.floor(Number(r.exp)))
  const cutoff = nowSeconds() - CLOCK_TOLERANCE_SECONDS
  for (const [jti, exp] of st.revoked) if (exp < cutoff) st.revoked.delete(jti)
  st.watermark = rows[0]?.now ?? null
  st.syncedAt = Date.now()
  st.syncStartedAt = startedAt
}

// Long-lived: one sync at a time, shared by concurrent callers; a failure is logged and retried later.
const syncShared = (services: Services, st: RevocationState): Promise<void> =>
  (st.pending ??= sync(services, st)
    .catch((err: unknown) => {
      st.failedAt = Date.now()
      services.log.warn('revocation sync from PostgreSQL failed; will retry', { err })
    })
    .finally(() => {
      st.pending = undefined
    }))

const busSays = async (services: Services, st: RevocationState, jti: string, exp: number): Promise<boolean> => {
  try {
    if ((await services.bus.get(revokedKey(jti))) === null) return false
    st.revoked.set(jti, exp)
    return true
  } catch (err) {
    services.log.warn('revocation check on the bus failed; relying on the PostgreSQL sync', { err })
    return false
  }
}

/** True when the token `jti` (expiring at `exp`) has been revoked. */
export const isRevoked = async (services: Services, jti: string, exp: number): Promise<boolean> => {
  const st = stateOf(services)
  const now = Date.now()
  const stale = now - st.syncedAt > REVOCATION_SYNC_MS
  const mayTry = now - st.failedAt > REVOCATION_SYNC_MS // a failing database is not asked on every request
  if (isLongLived(services)) {
    const sub = authSubscription(services)
    if (st.syncedAt === 0 && mayTry) await syncShared(services, st) // once, at the first check
    // In the background (errors are logged there): when stale, or once the subscription has come up since.
    else if ((stale || (sub.active && st.syncStartedAt < sub.since)) && mayTry && !st.pending) void syncShared(services, st)
    if (st.revoked.has(jti)) return true
    // The memory set is complete when the subscription is up and a sync that started after it came up has
    // finished recently; otherwise a revocation may have slipped between the two: ask the bus too.
    const complete = sub.active && st.syncStartedAt >= sub.since && Date.now() - st.syncedAt <= 3 * REVOCATION_SYNC_MS
    return complete ? false : busSays(services, st, jti, exp)
  }
  // Per request (workerd): no promise is shared between requests, and nothing runs after the response.
  if (stale && mayTry) {
    try {
      await sync(services, st)
    } catch (err) {
      st.failedAt = Date.now()
      services.log.warn('revocation sync from PostgreSQL failed; relying on the bus', { err })
    }
  }
  if (st.revoked.has(jti)) return true
  return busSays(services, st, jti, exp)
}

/**
 * Revokes a token until it expires: PostgreSQL first (the record), then the bus key and the event.
 * Bus failures are logged, not thrown: the PostgreSQL sync spreads the revocation within seconds.
 */
export const revokeToken = async (services: Services, jti: string, exp: number): Promise<void> => {
  const { sql, t } = services.db
  await sql`update ${t.human_sessions} set revoked_at = coalesce(revoked_at, now()) where jti = ${jti}`
  const ttl = exp - nowSeconds() + CLOCK_TOLERANCE_SECONDS
  if (ttl > 0) {
    try {
      await services.bus.set(revokedKey(jti), '1', { ttlSeconds: ttl })
    } catch (err) {
      services.log.warn('could not record a revocation on the bus; PostgreSQL has it', { jti, err })
    }
  }
  await publishAuthEvent(services, { type: 'token_revoked', jti, exp })
}
