/** Test clients for live events: a WebSocket and an SSE reader that collect what they receive. */
import WebSocket from 'ws'
import Redis from 'ioredis'

export interface Collected<T> {
  items: T[]
  /** Resolves once `n` items arrived (or throws after `ms`). */
  waitFor(n: number, ms?: number): Promise<T[]>
  close(): Promise<void>
}

const waiter = <T>(items: T[]) => async (n: number, ms = 10_000) => {
  const end = Date.now() + ms
  while (items.length < n) {
    if (Date.now() > end) throw new Error(`got ${items.length} of ${n} within ${ms} ms: ${JSON.stringify(items).slice(0, 500)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return items
}

// biome-ignore lint/suspicious/noExplicitAny: events are arbitrary JSON, asserted field by field
export type AnyEvent = Record<string, any> & { id: number; type: string }

/** Opens the events WebSocket; resolves once it is open. */
export const openEventsWs = (baseUrl: string, token: string, query = ''): Promise<Collected<AnyEvent> & { ws: WebSocket; closed: Promise<number> }> =>
  new Promise((resolve, reject) => {
    const url = `${baseUrl.replace(/^http/, 'ws')}/api/v1/events/ws${query ? `?${query}` : ''}`
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
    const items: AnyEvent[] = []
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)))
    ws.on('message', (d) => {
      const msg = JSON.parse(d.toString())
      if (msg.type !== 'pong') items.push(msg)
    })
    ws.once('open', () =>
      resolve({
        ws,
        items,
        closed,
        waitFor: waiter(items),
        close: async () => {
          ws.close()
          await closed
        },
      }),
    )
    ws.once('unexpected-response', (_q, res) => reject(new Error(`WebSocket refused: ${res.statusCode}`)))
    ws.once('error', reject)
  })

/** Reads the SSE stream; resolves once the response headers arrived. */
export const openEventsSse = async (
  baseUrl: string,
  token: string,
  options: { query?: string; lastEventId?: string; viaQueryToken?: boolean } = {},
): Promise<Collected<AnyEvent> & { ids: string[]; response: Response }> => {
  const ctrl = new AbortController()
  const qs = new URLSearchParams(options.query ?? '')
  if (options.viaQueryToken) qs.set('token', token)
  const headers: Record<string, string> = { accept: 'text/event-stream' }
  if (!options.viaQueryToken) headers.authorization = `Bearer ${token}`
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId
  const response = await fetch(`${baseUrl}/api/v1/events/stream?${qs}`, { headers, signal: ctrl.signal })
  const items: AnyEvent[] = []
  const ids: string[] = []
  if (response.ok && response.body) {
    void (async () => {
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
      let buf = ''
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          buf += value
          let i: number
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i)
            buf = buf.slice(i + 2)
            const id = /^id: (.*)$/m.exec(frame)?.[1]
            const data = /^data: (.*)$/m.exec(frame)?.[1]
            if (data) {
              items.push(JSON.parse(data))
              if (id) ids.push(id)
            }
          }
        }
      } catch {
        // aborted by close()
      }
    })()
  }
  return {
    items,
    ids,
    response,
    waitFor: waiter(items),
    close: async () => ctrl.abort(),
  }
}

/** Subscribes to a Redis channel as an outside agent would; resolves once subscribed. */
export const subscribeRedis = async (url: string, channel: string): Promise<Collected<Record<string, unknown>>> => {
  const sub = new Redis(url)
  const items: Record<string, unknown>[] = []
  sub.on('message', (_ch, msg) => items.push(JSON.parse(msg)))
  await sub.subscribe(channel)
  return { items, waitFor: waiter(items), close: async () => void sub.disconnect() }
}
