/**
 * Auth events on the bus channel `nexus:auth` (revocations, key rotations), and the one subscription per
 * long-lived process that feeds them to the in-memory caches.
 */
import type { Services } from '../services.ts'
import { isLongLived, scopedState } from '../state.ts'

export const AUTH_CHANNEL = 'nexus:auth'

export type AuthEvent =
  | { type: 'token_revoked'; jti: string; exp: number }
  | { type: 'key_rotated'; kid: string }

type Handler = (services: Services, event: AuthEvent) => void
const handlers: Handler[] = []

/** Registers a module-level handler, called for every auth event this process hears or publishes. */
export const onAuthEvent = (handler: Handler): void => {
  handlers.push(handler)
}

const dispatch = (services: Services, event: AuthEvent) => {
  for (const h of handlers) {
    try {
      h(services, event)
    } catch (err) {
      services.log.warn('auth event handler failed', { type: event.type, err })
    }
  }
}

const parse = (message: string): AuthEvent | undefined => {
  try {
    const e = JSON.parse(message) as Partial<AuthEvent> & Record<string, unknown>
    if (e.type === 'token_revoked' && typeof e.jti === 'string' && typeof e.exp === 'number')
      return { type: 'token_revoked', jti: e.jti, exp: e.exp }
    if (e.type === 'key_rotated' && typeof e.kid === 'string') return { type: 'key_rotated', kid: e.kid }
  } catch {
    // Not ours, or garbage: the channel is shared with outside publishers.
  }
  return undefined
}

/**
 * Applies an event here at once, then publishes it for every other process. A failed publish is logged,
 * not thrown: PostgreSQL is the record, and the other processes' periodic sync picks the change up.
 */
export const publishAuthEvent = async (services: Services, event: AuthEvent): Promise<void> => {
  dispatch(services, event)
  try {
    await services.bus.publish(AUTH_CHANNEL, JSON.stringify(event))
  } catch (err) {
    services.log.warn('could not publish an auth event; other processes catch up within their sync interval', {
      type: event.type,
      err,
    })
  }
}

interface SubscriptionState {
  active: boolean
  /** When the subscription became active (ms); 0 while it is not. */
  since: number
  /** When the last attempt failed (ms); retried after {@link RETRY_MS}. */
  failedAt: number
  connecting: boolean
}

const RETRY_MS = 5_000

/**
 * On a long-lived host, makes sure this process is subscribed to `nexus:auth`, without making the caller
 * wait: the first call starts the subscription in the background. Reports whether it is up, and since
 * when. On per-request runtimes (no long-lived connection) it is never up.
 */
export const authSubscription = (services: Services): { active: boolean; since: number } => {
  if (!isLongLived(services)) return { active: false, since: 0 }
  const st = scopedState<SubscriptionState>(services, 'auth-subscription', () => ({
    active: false,
    since: 0,
    failedAt: 0,
    connecting: false,
  }))
  if (!st.active && !st.connecting && Date.now() - st.failedAt >= RETRY_MS) {
    st.connecting = true
    services.bus
      .subscribe([AUTH_CHANNEL], (_channel, message) => {
        const event = parse(message)
        if (event) dispatch(services, event)
      })
      .then(
        () => {
          st.active = true
          st.since = Date.now()
        },
        (err: unknown) => {
          st.failedAt = Date.now()
          services.log.warn('could not subscribe to auth events; checking revocations on the bus meanwhile', { err })
        },
      )
      .finally(() => {
        st.connecting = false
      })
  }
  return { active: st.active, since: st.since }
}
