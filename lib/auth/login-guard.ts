/**
 * Brute-force protection for login: failure counters per username and per client in fixed 15-minute
 * windows; reaching the limit locks that username (or client) for NEXUS_LOGIN_LOCK_SECONDS, doubling on
 * each further lock within a day (up to 16x). Locks answer 429 with Retry-After before any password work,
 * for existing and unknown usernames alike. Every login also counts against a per-client rate limit.
 * Without the bus these controls cannot work, so login then fails closed with 503.
 */
import { ApiError, type ErrorCode } from '../errors.ts'
import type { Services } from '../services.ts'
import { enforceRateLimit } from './rate-limit.ts'

/** The window in which failures are counted. */
export const FAILURE_WINDOW_SECONDS = 900
const LOCKOUT_MEMORY_SECONDS = 86_400
const MAX_BACKOFF_FACTOR = 16

export interface LoginAttempt {
  username: string
  client: string
}

type Subject = 'user' | 'client'

const id = (subject: Subject, a: LoginAttempt) =>
  subject === 'user' ? encodeURIComponent(a.username) : encodeURIComponent(a.client)
const failKey = (s: Subject, a: LoginAttempt) => `auth:fail:${s}:${id(s, a)}`
const lockKey = (s: Subject, a: LoginAttempt) => `auth:lock:${s}:${id(s, a)}`
const lockoutsKey = (s: Subject, a: LoginAttempt) => `auth:lockouts:${s}:${id(s, a)}`

const busDown = (err: unknown) =>
  new ApiError(503, 'BUS_UNAVAILABLE' satisfies ErrorCode, 'Login is paused: the brute-force counters (Redis) are unreachable', {
    cause: err,
  })

/** Runs bus work for login; fails closed (503), since without counters guessing would be unlimited. */
const guarded = async <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof ApiError) throw err
    throw busDown(err)
  }
}

/** Counts a login request against the client's per-minute limit: 429 `RATE_LIMITED` over it. */
export const enforceLoginRateLimit = (services: Services, client: string): Promise<void> =>
  guarded(() =>
    enforceRateLimit(
      services.bus,
      `login:${encodeURIComponent(client)}`,
      { limit: services.config.NEXUS_LOGIN_RATE_LIMIT, windowSeconds: 60 },
      'login attempts',
    ),
  )

const lockedFor = async (services: Services, key: string): Promise<number | undefined> => {
  const ttl = await services.bus.ttl(key)
  if (ttl === -2) return undefined
  return ttl > 0 ? ttl : services.config.NEXUS_LOGIN_LOCK_SECONDS
}

const locked = (seconds: number) =>
  new ApiError(429, 'LOGIN_LOCKED', 'Too many failed logins; try again later', {
    headers: { 'retry-after': String(Math.max(1, seconds)) },
  })

/** Throws 429 `LOGIN_LOCKED` with Retry-After while the client is locked (checked before the body is read). */
export const assertClientNotLocked = (services: Services, client: string): Promise<void> =>
  guarded(async () => {
    const wait = await lockedFor(services, lockKey('client', { username: '', client }))
    if (wait !== undefined) throw locked(wait)
  })

/** Throws 429 `LOGIN_LOCKED` with Retry-After while the username is locked. */
export const assertUserNotLocked = (services: Services, attempt: LoginAttempt): Promise<void> =>
  guarded(async () => {
    const wait = await lockedFor(services, lockKey('user', attempt))
    if (wait !== undefined) throw locked(wait)
  })

const countFailure = async (services: Services, subject: Subject, attempt: LoginAttempt, limit: number) => {
  const { bus, config } = services
  const failures = await bus.incr(failKey(subject, attempt), 1, FAILURE_WINDOW_SECONDS)
  if (failures < limit) return
  const lockouts = await bus.incr(lockoutsKey(subject, attempt), 1, LOCKOUT_MEMORY_SECONDS)
  const seconds = Math.min(
    LOCKOUT_MEMORY_SECONDS,
    config.NEXUS_LOGIN_LOCK_SECONDS * Math.min(MAX_BACKOFF_FACTOR, 2 ** Math.max(0, lockouts - 1)),
  )
  await bus.set(lockKey(subject, attempt), '1', { ttlSeconds: seconds })
  // The next lock starts from a fresh count once this one ends.
  await bus.del(failKey(subject, attempt))
  services.log.warn('login locked after repeated failures', { subject, lockSeconds: seconds, lockouts })
}

/** Counts a failed login against the username and the client, locking either at its limit. */
export const recordLoginFailure = (services: Services, attempt: LoginAttempt): Promise<void> =>
  guarded(async () => {
    const { config } = services
    await Promise.all([
      countFailure(services, 'user', attempt, config.NEXUS_LOGIN_MAX_FAILURES),
      countFailure(services, 'client', attempt, config.NEXUS_LOGIN_MAX_CLIENT_FAILURES),
    ])
  })

/**
 * Clears the username's failures and lock history after a correct password. The client's counter is
 * left alone: otherwise one valid account would let a client reset its count between guesses at others.
 */
export const recordLoginSuccess = async (services: Services, attempt: LoginAttempt): Promise<void> => {
  try {
    await Promise.all([services.bus.del(failKey('user', attempt)), services.bus.del(lockoutsKey('user', attempt))])
  } catch (err) {
    services.log.warn('could not clear login failure counters', { err })
  }
}
