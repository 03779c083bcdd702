/**
 * Live events over the WebSocket: resumes with `?after=<last id seen>`, reconnects with backoff, and
 * never hands on an event twice (ids only grow; anything at or below the last id is dropped). No DOM
 * here, so it runs under test with a stand-in WebSocket.
 */

export interface LiveEvent {
  id: number
  type: string
  command_id?: string
  agent_id?: string
  created_at?: string
  [field: string]: unknown
}

export type LiveState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'stopped'

export interface LiveStatus {
  state: LiveState
  /** Failed attempts since the connection was last open. */
  attempt: number
  /** When the next attempt is due (epoch ms), while reconnecting. */
  retryAt: number | undefined
  lastId: number
}

/** The part of the browser's WebSocket this needs. */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason?: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export interface LiveOptions {
  /** The socket URL resuming after `after`. */
  url(after: number): string
  onEvent(event: LiveEvent): void
  onStatus(status: LiveStatus): void
  /**
   * After an attempt that never opened (browsers hide the HTTP status of a refused upgrade): resolves
   * false when the session is over (a 401), true when it is fine or unknown (the server is down).
   */
  checkSession(): Promise<boolean>
  /** The server closed with "token expired", or checkSession said the session is over. */
  onExpired(): void
  open?: (url: string) => SocketLike
  backoffMs?: number[]
  /** Application ping (browsers cannot send protocol pings). */
  pingEveryMs?: number
  /** No message (a pong included) for this long: the connection is dead though not closed. */
  staleAfterMs?: number
  random?: () => number
  now?: () => number
}

export interface Live {
  /** Connects, delivering every event after `after`. */
  start(after: number): void
  stop(): void
  /** Skips the wait while reconnecting. */
  retryNow(): void
  readonly status: LiveStatus
}

/** Close codes after which reconnecting cannot help: the token is no longer good. */
const EXPIRED_CODES = new Set([4001, 1008])

export const createLive = (options: LiveOptions): Live => {
  const open = options.open ?? ((url: string) => new WebSocket(url) as unknown as SocketLike)
  const backoff = options.backoffMs ?? [250, 1000, 2000, 4000, 6000]
  const pingEvery = options.pingEveryMs ?? 20_000
  const staleAfter = options.staleAfterMs ?? 50_000
  const random = options.random ?? Math.random
  const now = options.now ?? Date.now

  let socket: SocketLike | undefined
  let state: LiveState = 'idle'
  let lastId = 0
  let attempt = 0
  let retryAt: number | undefined
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setInterval> | undefined
  let lastMessageAt = 0

  const status = (): LiveStatus => ({ state, attempt, retryAt, lastId })
  const publish = () => options.onStatus(status())
  const setState = (next: LiveState) => {
    state = next
    publish()
  }

  const detach = () => {
    clearInterval(pingTimer)
    pingTimer = undefined
    const s = socket
    socket = undefined
    if (!s) return
    s.onopen = s.onmessage = s.onclose = s.onerror = null
    try {
      s.close(1000, 'bye')
    } catch {
      // already closing
    }
  }

  const expire = () => {
    stop()
    options.onExpired()
  }

  const schedule = () => {
    const base = backoff[Math.min(attempt, backoff.length - 1)]!
    const delay = Math.round(base * (0.8 + 0.4 * random()))
    attempt++
    retryAt = now() + delay
    publish()
    retryTimer = setTimeout(connect, delay)
  }

  const onClosed = async (code: number, wasOpen: boolean) => {
    if (state === 'stopped') return
    if (EXPIRED_CODES.has(code)) return expire()
    setState('reconnecting')
    if (!wasOpen) {
      const ok = await options.checkSession().catch(() => true)
      // stop() may have run while the check was out.
      if ((state as LiveState) === 'stopped') return
      if (!ok) return expire()
    }
    schedule()
  }

  const ping = () => {
    if (!socket) return
    if (now() - lastMessageAt > staleAfter) {
      // Half-open (a cable pulled, a proxy gone quiet): the close event may never come.
      detach()
      void onClosed(1006, true)
      return
    }
    try {
      socket.send('ping')
    } catch {
      // the close event follows
    }
  }

  function connect() {
    clearTimeout(retryTimer)
    retryTimer = undefined
    retryAt = undefined
    detach()
    if (state !== 'reconnecting') setState('connecting')
    else publish()
    let opened = false
    let s: SocketLike
    try {
      s = open(options.url(lastId))
    } catch {
      void onClosed(1006, false)
      return
    }
    socket = s
    s.onopen = () => {
      opened = true
      attempt = 0
      lastMessageAt = now()
      pingTimer = setInterval(ping, pingEvery)
      setState('live')
    }
    s.onmessage = (message) => {
      lastMessageAt = now()
      if (typeof message.data !== 'string') return
      let event: unknown
      try {
        event = JSON.parse(message.data)
      } catch {
        return
      }
      if (!event || typeof event !== 'object') return
      const { id, type } = event as { id?: unknown; type?: unknown }
      if (typeof id !== 'number' || typeof type !== 'string') return // pong and other control frames
      if (id <= lastId) return // already delivered: a replay after a reconnect never duplicates
      lastId = id
      options.onEvent(event as LiveEvent)
    }
    s.onclose = (ev) => {
      if (socket !== s) return
      socket = undefined
      clearInterval(pingTimer)
      pingTimer = undefined
      void onClosed(ev.code, opened)
    }
    s.onerror = () => undefined // a close event follows
  }

  function stop() {
    state = 'stopped'
    clearTimeout(retryTimer)
    retryTimer = undefined
    retryAt = undefined
    detach()
    publish()
  }

  return {
    start(after) {
      lastId = Math.max(0, after)
      attempt = 0
      state = 'idle'
      connect()
    },
    stop,
    retryNow() {
      if (state === 'reconnecting' && retryTimer !== undefined) connect()
    },
    get status() {
      return status()
    },
  }
}

/**
 * The newest event id, found through `GET /api/v1/events?after=&limit=1` (which returns the first event
 * after an id) by doubling then bisecting: about 2·log2(id) small calls. The API has no direct way.
 */
export const findNewestEventId = async (firstAfter: (after: number) => Promise<LiveEvent | undefined>): Promise<number> => {
  const first = await firstAfter(0)
  if (!first) return 0
  let found = first.id
  let hi = Math.max(found, 1)
  for (;;) {
    const next = await firstAfter(hi)
    if (!next) break
    found = next.id
    hi = next.id * 2
  }
  // `found` exists and no id is above `hi`.
  while (found < hi) {
    const mid = Math.ceil((found + hi) / 2)
    const next = await firstAfter(mid - 1)
    if (!next) hi = mid - 1
    else found = next.id
  }
  return found
}

/**
 * The id after which the log's events are at or after `time` (epoch ms), by bisection over ids with
 * the same one-event calls; 0 when every event is.
 */
export const findEventIdAt = async (
  firstAfter: (after: number) => Promise<LiveEvent | undefined>,
  newest: number,
  time: number,
): Promise<number> => {
  let lo = 0
  let hi = newest
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2)
    const next = await firstAfter(mid)
    if (!next || Date.parse(next.created_at ?? '') >= time) hi = mid
    else lo = Math.max(mid + 1, next.id)
  }
  return lo
}
