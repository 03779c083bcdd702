/** Bus driver over Redis' HTTP REST protocol (@upstash/redis plus our own SSE subscriber), for runtimes without TCP. */
// The '/cloudflare' entry is the web-only build (fetch, no `cache: 'no-store'`, no process.env), so the same
// import works on Node and on workerd.
import { Redis } from '@upstash/redis/cloudflare'
import type { Bus, MessageHandler, Subscription } from './types.ts'
import { prefixer } from './types.ts'

export interface UpstashBusOptions {
  /** REST endpoint, e.g. https://eu1-x.upstash.io or the local bus REST server. */
  url: string
  token: string
  prefix?: string
  /** Give up on a command (or on a subscription's confirmation) after this long. Default 5 s. */
  commandTimeoutMs?: number
}

import { INCR_SCRIPT } from './types.ts'

// A subscription that was active and dropped reconnects with this capped backoff, as ioredis does.
const RECONNECT_MAX_MS = 2_000
// One SSE line or event larger than this is a broken stream, not a message to buffer forever.
const MAX_EVENT_CHARS = 16 * 1024 * 1024

/**
 * Creates a bus that talks to Redis over the Upstash REST protocol: commands through @upstash/redis,
 * subscriptions through one SSE stream per channel at `<url>/subscribe/<channel>`.
 */
export const createUpstashBus = (options: UpstashBusOptions): Bus => {
  if (!options.url || !options.token) throw new Error('the Upstash bus needs both a url and a token')
  const base = options.url.replace(/\/+$/, '')
  const p = prefixer(options.prefix ?? '')
  const timeoutMs = options.commandTimeoutMs ?? 5_000
  const redis = new Redis({
    url: base,
    token: options.token,
    automaticDeserialization: false,
    enableTelemetry: false,
    // fetch's `keepalive` flag is for requests that outlive a page and caps bodies at 64 KiB where it is
    // enforced; HTTP connection reuse happens without it.
    keepAlive: false,
    // Only network failures are retried; a down server must fail within a fraction of a second.
    retry: { retries: 2, backoff: (n) => 50 * 2 ** n },
    // A function, so each request gets a fresh deadline (and an abort throws instead of faking a result).
    signal: () => AbortSignal.timeout(timeoutMs),
  })
  const subscriptions = new Set<Subscription>()

  const run = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op()
    } catch (err) {
      throw sanitize(err)
    }
  }

  return {
    kind: 'upstash',
    publish: (channel, message) => run(() => redis.publish(p(channel), message)),
    async publishMany(messages) {
      if (messages.length === 0) return
      await run(() => {
        const pipe = redis.pipeline()
        for (const [channel, message] of messages) pipe.publish(p(channel), message)
        return pipe.exec()
      })
    },
    async subscribe(channels, onMessage): Promise<Subscription> {
      const sub = await subscribeSse({ base, token: options.token, timeoutMs }, channels, p, onMessage)
      const tracked: Subscription = {
        async close() {
          subscriptions.delete(tracked)
          await sub.close()
        },
      }
      subscriptions.add(tracked)
      return tracked
    },
    get: (key) => run(() => redis.get<string>(p(key))),
    async set(key, value, opts = {}) {
      const args: (string | number)[] = []
      if (opts.ttlSeconds) args.push('PX', Math.round(opts.ttlSeconds * 1000))
      if (opts.onlyIfAbsent) args.push('NX')
      const res = await run(() => redis.exec<string | null>(['SET', p(key), value, ...args]))
      return res === 'OK'
    },
    async del(key) {
      await run(() => redis.del(p(key)))
    },
    async incr(key, by = 1, ttlSeconds = 0) {
      const v = await run(() => redis.eval<number[], number>(INCR_SCRIPT, [p(key)], [by, Math.round(ttlSeconds * 1000)]))
      return Number(v)
    },
    ttl: (key) => run(() => redis.ttl(p(key))),
    async ping() {
      await run(() => redis.ping())
    },
    async close() {
      await Promise.allSettled([...subscriptions].map((s) => s.close()))
    },
  }
}

/** @upstash/redis appends the whole command, values included, to its error messages: keep only Redis' reply. */
const sanitize = (err: unknown): unknown => {
  if (!(err instanceof Error) || err.name !== 'UpstashError') return err
  const cut = err.message.indexOf(', command was: ')
  const clean = new Error(cut >= 0 ? err.message.slice(0, cut) : err.message)
  clean.name = 'UpstashError'
  return clean
}

interface SseTarget {
  base: string
  token: string
  timeoutMs: number
}

/*
 * Why not the SDK's redis.subscribe(): it cannot say when a subscription is active (its constructor
 * returns at once), it logs stream errors to the console, never reconnects a dropped stream, puts the
 * channel into the URL unencoded, splits a message at its first newline, and cuts the channel name at
 * the first comma. This speaks the same wire format: POST <url>/subscribe/<channel> answered by an SSE
 * stream whose events are `subscribe,<channel>,<count>` once active, then `message,<channel>,<payload>`.
 */
const subscribeSse = async (
  target: SseTarget,
  channels: string[],
  p: (name: string) => string,
  onMessage: MessageHandler,
): Promise<Subscription> => {
  const closer = new AbortController()
  let closed = false
  const deliver = (name: string, message: string) => {
    if (closed) return
    try {
      onMessage(name, message)
    } catch {
      // A failing handler must not break the stream or the other channels.
    }
  }

  const workers: Promise<void>[] = []
  const ready: Promise<void>[] = []
  for (const name of new Set(channels)) {
    let confirm!: () => void
    let fail!: (err: unknown) => void
    ready.push(new Promise<void>((resolve, reject) => ((confirm = resolve), (fail = reject))))
    workers.push(followChannel(target, name, p(name), closer.signal, { confirm, fail, deliver }))
  }

  const close = async () => {
    if (closed) return
    closed = true
    closer.abort()
    await Promise.allSettled(workers)
  }
  try {
    await Promise.all(ready)
  } catch (err) {
    await close()
    throw err
  }
  return { close }
}

interface ChannelHooks {
  confirm(): void
  fail(err: unknown): void
  deliver(name: string, message: string): void
}

/** Keeps one channel's stream open until `stop` aborts; the first confirmation (or failure) settles the hooks. */
const followChannel = async (
  target: SseTarget,
  name: string,
  wire: string,
  stop: AbortSignal,
  hooks: ChannelHooks,
): Promise<void> => {
  const url = `${target.base}/subscribe/${encodeURIComponent(wire)}`
  const messagePrefix = `message,${wire},`
  const confirmPrefix = `subscribe,${wire},`
  let active = false
  let failures = 0
  while (!stop.aborted) {
    const attempt = new AbortController()
    const abortAttempt = () => attempt.abort()
    stop.addEventListener('abort', abortAttempt)
    // A server that accepts the stream but never confirms must not hold subscribe() (or a reconnect) forever.
    const deadline = setTimeout(
      () => attempt.abort(new Error(`subscribing to a bus channel timed out after ${target.timeoutMs} ms`)),
      target.timeoutMs,
    )
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${target.token}`,
          Accept: 'text/event-stream',
          'Content-Type': 'application/json',
        },
        body: '[]',
        signal: attempt.signal,
      })
      if (!res.ok || !res.body) throw new Error(`subscribing to a bus channel failed: ${await describeFailure(res)}`)
      for await (const data of readSse(res.body)) {
        if (data.startsWith(messagePrefix)) hooks.deliver(name, data.slice(messagePrefix.length))
        else if (data.startsWith(confirmPrefix)) {
          clearTimeout(deadline)
          failures = 0
          if (!active) {
            active = true
            hooks.confirm()
          }
        }
      }
      if (!active) throw new Error('the bus stream ended before the subscription was confirmed')
    } catch (err) {
      if (stop.aborted) break
      if (!active) {
        hooks.fail(err)
        return
      }
    } finally {
      clearTimeout(deadline)
      stop.removeEventListener('abort', abortAttempt)
      attempt.abort()
    }
    await sleep(Math.min(100 * 2 ** failures++, RECONNECT_MAX_MS), stop)
  }
}

const describeFailure = async (res: Response): Promise<string> => {
  let detail = ''
  try {
    const body = (await res.json()) as { error?: unknown }
    if (typeof body.error === 'string') detail = `: ${body.error.slice(0, 200)}`
  } catch {
    // Not our JSON error shape; the status says enough.
  }
  return `HTTP ${res.status}${detail}`
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })

/**
 * Yields the `data` of each server-sent event, per the SSE spec: lines end in CRLF, LF or CR; several
 * `data:` lines of one event join with LF; a blank line ends the event; comments and other fields are
 * ignored. Cancels the body when the consumer stops or the stream fails.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let line = ''
  let skipLf = false
  let data: string[] | null = null
  let dataChars = 0
  const events: string[] = []

  const endLine = () => {
    if (line === '') {
      if (data) events.push(data.join('\n'))
      data = null
      dataChars = 0
    } else if (line.charCodeAt(0) !== 58 /* ':' comment */) {
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      if (field === 'data') {
        let value = colon < 0 ? '' : line.slice(colon + 1)
        if (value.charCodeAt(0) === 32) value = value.slice(1)
        dataChars += value.length + 1
        if (dataChars > MAX_EVENT_CHARS) throw new Error('a bus stream event exceeded the size limit')
        ;(data ??= []).push(value)
      }
    }
    line = ''
  }

  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      const text = decoder.decode(value, { stream: true })
      let start = 0
      if (skipLf && text.charCodeAt(0) === 10) start = 1
      skipLf = false
      for (let i = start; i < text.length; i++) {
        const c = text.charCodeAt(i)
        if (c !== 10 && c !== 13) continue
        line += text.slice(start, i)
        endLine()
        if (c === 13) {
          if (i + 1 === text.length) skipLf = true
          else if (text.charCodeAt(i + 1) === 10) i++
        }
        start = i + 1
      }
      line += text.slice(start)
      if (line.length > MAX_EVENT_CHARS) throw new Error('a bus stream line exceeded the size limit')
      while (events.length > 0) yield events.shift() as string
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
}
