/** Bus driver over Redis TCP (ioredis). Commands share one connection; each subscription gets its own. */
import Redis from 'ioredis'
import type { Bus, Subscription } from './types.ts'
import { INCR_SCRIPT, prefixer } from './types.ts'

export interface RedisBusOptions {
  url: string
  prefix?: string
  /** Give up on a command after this long while Redis is unreachable, instead of queueing forever. */
  commandTimeoutMs?: number
}

const connect = (url: string, commandTimeoutMs: number) =>
  new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    // No enableAutoPipelining: it defers commands to a later tick, and on workerd the per-request client
    // is closed once the request's work settles, so a deferred INCRBY (token counts) could be lost.
    // test/gateway/keys.test.ts fails with it on workerd against real Redis.
    // Reconnect forever with a capped backoff: Redis coming back must heal the process with no restart.
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  })

export const createRedisBus = (options: RedisBusOptions): Bus => {
  const p = prefixer(options.prefix ?? '')
  const timeout = options.commandTimeoutMs ?? 2_000
  const client = connect(options.url, timeout)
  client.on('error', () => undefined) // surfaced through command failures and /health, not as crashes
  const subscribers = new Set<Redis>()

  return {
    kind: 'redis',
    publish: (channel, message) => client.publish(p(channel), message),
    async publishMany(messages) {
      if (messages.length === 0) return
      // One write for all: a pipeline answers with [error, result] per command.
      const results = await client.pipeline(messages.map(([channel, message]) => ['publish', p(channel), message])).exec()
      const failed = results?.find(([err]) => err)
      if (failed) throw failed[0]
    },
    async subscribe(channels, onMessage): Promise<Subscription> {
      const sub = connect(options.url, timeout)
      sub.on('error', () => undefined)
      subscribers.add(sub)
      const names = new Map(channels.map((c) => [p(c), c]))
      let closed = false
      sub.on('message', (ch: string, msg: string) => {
        // Messages already in the socket when close() ran must not be delivered after it resolved.
        if (closed) return
        const name = names.get(ch)
        if (name === undefined) return
        try {
          onMessage(name, msg)
        } catch {
          // A failing subscriber must not break the connection or the messages after this one.
        }
      })
      try {
        await sub.subscribe(...names.keys())
      } catch (err) {
        subscribers.delete(sub)
        sub.disconnect()
        throw err
      }
      return {
        async close() {
          if (closed) return
          closed = true
          subscribers.delete(sub)
          sub.disconnect()
        },
      }
    },
    get: (key) => client.get(p(key)),
    async set(key, value, opts = {}) {
      const args: (string | number)[] = []
      if (opts.ttlSeconds) args.push('PX', Math.round(opts.ttlSeconds * 1000))
      if (opts.onlyIfAbsent) args.push('NX')
      const res = await client.call('SET', p(key), value, ...args)
      return res === 'OK'
    },
    async del(key) {
      await client.del(p(key))
    },
    async incr(key, by = 1, ttlSeconds = 0) {
      const v = await client.eval(INCR_SCRIPT, 1, p(key), by, Math.round(ttlSeconds * 1000))
      return Number(v)
    },
    ttl: (key) => client.ttl(p(key)),
    async ping() {
      await client.ping()
    },
    async close() {
      for (const s of subscribers) s.disconnect()
      subscribers.clear()
      await client.quit().catch(() => client.disconnect())
    },
  }
}
