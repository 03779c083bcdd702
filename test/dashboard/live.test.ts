/** The dashboard's live-events client without a browser: resume point, no duplicates, backoff, expiry; and the log searches. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createLive, findEventIdAt, findNewestEventId, type LiveEvent, type LiveStatus, type SocketLike } from '../../dashboard/src/live.ts'

class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null
  onmessage: SocketLike['onmessage'] = null
  onclose: SocketLike['onclose'] = null
  onerror: SocketLike['onerror'] = null
  sent: string[] = []
  closed = false
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(data)
  }
  close() {
    this.closed = true
  }
  open() {
    this.onopen?.({})
  }
  deliver(...events: Array<Partial<LiveEvent> | string>) {
    for (const e of events) this.onmessage?.({ data: typeof e === 'string' ? e : JSON.stringify(e) })
  }
  drop(code = 1006) {
    this.onclose?.({ code })
  }
}

const setup = (options: { session?: () => Promise<boolean> } = {}) => {
  const sockets: FakeSocket[] = []
  const events: LiveEvent[] = []
  const statuses: LiveStatus[] = []
  let expired = 0
  const live = createLive({
    url: (after) => `ws://test/api/v1/events/ws?after=${after}`,
    onEvent: (e) => events.push(e),
    onStatus: (s) => statuses.push(s),
    checkSession: options.session ?? (async () => true),
    onExpired: () => expired++,
    open: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
    backoffMs: [100, 200, 400],
    random: () => 0.5,
    pingEveryMs: 1000,
    staleAfterMs: 3000,
  })
  return { live, sockets, events, statuses, expired: () => expired, last: () => sockets.at(-1)! }
}

describe('dashboard live events', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('resumes after the last id it delivered, and never delivers an id twice or out of order', async () => {
    const t = setup()
    t.live.start(10)
    expect(t.last().url).toMatch(/after=10$/)
    t.last().open()
    expect(t.live.status.state).toBe('live')
    t.last().deliver({ id: 11, type: 'a' }, { id: 12, type: 'b' }, { id: 12, type: 'b' }, { id: 9, type: 'old' }, '{"type":"pong"}', 'not json')
    t.last().drop()
    expect(t.live.status.state).toBe('reconnecting')
    await vi.advanceTimersByTimeAsync(100)
    expect(t.sockets).toHaveLength(2)
    expect(t.last().url).toMatch(/after=12$/)
    t.last().open()
    // A server replaying what the client already has changes nothing.
    t.last().deliver({ id: 12, type: 'b' }, { id: 13, type: 'c' })
    expect(t.events.map((e) => e.id)).toEqual([11, 12, 13])
    expect(t.statuses.map((s) => s.state)).toContain('reconnecting')
    expect(t.live.status).toMatchObject({ state: 'live', attempt: 0, lastId: 13 })
  })

  it('backs off while the server is away, checks the session after refused attempts, and retries at once on demand', async () => {
    let checks = 0
    const t = setup({
      session: async () => {
        checks++
        return true
      },
    })
    t.live.start(0)
    t.last().open()
    t.last().drop()
    await vi.advanceTimersByTimeAsync(100)
    t.last().drop() // never opened
    await vi.advanceTimersByTimeAsync(0)
    expect(checks).toBe(1)
    expect(t.live.status.attempt).toBe(2)
    await vi.advanceTimersByTimeAsync(199)
    expect(t.sockets).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(t.sockets).toHaveLength(3)
    t.last().drop()
    await vi.advanceTimersByTimeAsync(0)
    t.live.retryNow()
    expect(t.sockets).toHaveLength(4)
    t.last().open()
    expect(t.live.status).toMatchObject({ state: 'live', attempt: 0 })
  })

  it('ends the session on "token expired" (4001) and when the session check says it is over', async () => {
    const a = setup()
    a.live.start(0)
    a.last().open()
    a.last().drop(4001)
    expect(a.expired()).toBe(1)
    expect(a.live.status.state).toBe('stopped')
    await vi.advanceTimersByTimeAsync(10_000)
    expect(a.sockets).toHaveLength(1)

    const b = setup({ session: async () => false })
    b.live.start(0)
    b.last().drop()
    await vi.advanceTimersByTimeAsync(0)
    expect(b.expired()).toBe(1)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(b.sockets).toHaveLength(1)
  })

  it('pings, and drops a connection that went silent (half-open) to reconnect', async () => {
    const t = setup()
    t.live.start(5)
    t.last().open()
    await vi.advanceTimersByTimeAsync(1000)
    expect(t.last().sent).toEqual(['ping'])
    await vi.advanceTimersByTimeAsync(3000)
    expect(t.sockets[0]!.closed).toBe(true)
    expect(t.live.status.state).toBe('reconnecting')
    await vi.advanceTimersByTimeAsync(100)
    expect(t.sockets).toHaveLength(2)
    expect(t.last().url).toMatch(/after=5$/)
  })

  it('stop() ends everything: no reconnect, no delivery', async () => {
    const t = setup()
    t.live.start(0)
    const first = t.last()
    first.open()
    t.live.stop()
    first.deliver({ id: 1, type: 'x' })
    first.drop()
    await vi.advanceTimersByTimeAsync(5000)
    expect(t.events).toEqual([])
    expect(t.sockets).toHaveLength(1)
  })
})

describe('dashboard event-log searches', () => {
  // A log with gaps in its ids, as a sequence leaves after rolled-back transactions.
  const ids = [3, 4, 7, 8, 9, 15, 16, 40, 41, 42, 97]
  const log = ids.map((id, i) => ({ id, type: 't', created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() }))
  const calls: number[] = []
  const firstAfter = async (after: number) => {
    calls.push(after)
    return log.find((e) => e.id > after)
  }

  it('finds the newest id in about 2·log2 calls', async () => {
    calls.length = 0
    expect(await findNewestEventId(firstAfter)).toBe(97)
    expect(calls.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(97)) + 2)
    expect(await findNewestEventId(async () => undefined)).toBe(0)
  })

  it('finds the id after which events are at or after a time', async () => {
    const at = (i: number) => Date.parse(log[i]!.created_at)
    for (let i = 0; i < log.length; i++) {
      const after = await findEventIdAt(firstAfter, 97, at(i))
      expect(log.find((e) => e.id > after)?.id, `event ${i}`).toBe(log[i]!.id)
    }
    expect(await findEventIdAt(firstAfter, 97, at(0) - 1000)).toBe(0)
    const past = await findEventIdAt(firstAfter, 97, at(10) + 1000)
    expect(log.find((e) => e.id > past)).toBeUndefined()
  })
})
