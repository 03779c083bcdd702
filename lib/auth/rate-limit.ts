/**
 * A fixed-window rate limiter over the Bus (Redis or in-process): one atomic INCR per hit, the window set
 * when the counter is created. Generic: auth uses it for login and verify, the gateway can reuse it.
 */
import type { Context } from 'hono'
import type { Bus } from '../bus/index.ts'
import { rateLimited } from '../errors.ts'

export interface FixedWindow {
  /** Hits allowed per window. */
  limit: number
  windowSeconds: number
}

export interface WindowState {
  allowed: boolean
  /** Hits counted in this window, this one included. */
  count: number
  remaining: number
  /** Seconds until the window ends (filled in when the hit is refused). */
  retryAfter: number
}

/** Counts one hit on `key` and says whether it is within the limit. */
export const hitWindow = async (bus: Bus, key: string, rule: FixedWindow): Promise<WindowState> => {
  const count = await bus.incr(`ratelimit:${key}`, 1, rule.windowSeconds)
  const allowed = count <= rule.limit
  let retryAfter = 0
  if (!allowed) {
    const ttl = await bus.ttl(`ratelimit:${key}`)
    // A counter without expiry (a crash between INCR and EXPIRE cannot happen with the script, but be safe).
    if (ttl === -1) await bus.del(`ratelimit:${key}`)
    retryAfter = ttl > 0 ? ttl : rule.windowSeconds
  }
  return { allowed, count, remaining: Math.max(0, rule.limit - count), retryAfter }
}

/** Counts a hit and throws 429 `RATE_LIMITED` with Retry-After when it is over the limit. */
export const enforceRateLimit = async (bus: Bus, key: string, rule: FixedWindow, what = 'requests'): Promise<void> => {
  const state = await hitWindow(bus, key, rule)
  if (!state.allowed)
    throw rateLimited(state.retryAfter, `Too many ${what}: at most ${rule.limit} per ${rule.windowSeconds} s; retry after ${state.retryAfter} s`)
}

/**
 * The client's address as the host saw it on the socket (`x-nexus-client-ip`, which the Node host and
 * the workerd router overwrite on every request, so a client cannot choose it).
 */
export const clientIp = (c: Context): string => {
  const ip = c.req.header('x-nexus-client-ip')?.trim()
  return ip && ip.length <= 64 ? ip : 'unknown'
}
