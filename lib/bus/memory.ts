/** In-process bus and cache: the embedded default, for a single process. Same semantics as Redis. */
import type { Bus, MessageHandler, SetOptions, Subscription } from './types.ts'

interface Entry {
  value: string
  expiresAt: number | null
}

export interface MemoryBusOptions {
  /** Clock in milliseconds; injectable so tests can move time. */
  now?: () => number
}

/** Creates an in-process bus. Subscribers are called on a later microtask, as a network bus would. */
export const createMemoryBus = (options: MemoryBusOptions = {}): Bus => {
  const now = options.now ?? Date.now
  const store = new Map<string, Entry>()
  const subscribers = new Map<string, Set<MessageHandler>>()
  let sweepAt = 0

  const live = (key: string): Entry | undefined => {
    const e = store.get(key)
    if (!e) return undefined
    if (e.expiresAt !== null && e.expiresAt <= now()) {
      store.delete(key)
      return undefined
    }
    return e
  }
  // Expired keys nobody reads again are swept at most once a second, so memory stays bounded.
  const sweep = () => {
    const t = now()
    if (t < sweepAt) return
    sweepAt = t + 1000
    for (const [k, e] of store) if (e.expiresAt !== null && e.expiresAt <= t) store.delete(k)
  }

  const publish = (channel: string, message: string): number => {
    const subs = subscribers.get(channel)
    if (!subs || subs.size === 0) return 0
    const targets = [...subs]
    queueMicrotask(() => {
      for (const fn of targets) {
        try {
          fn(channel, message)
        } catch {
          // A failing subscriber must not break the publisher or the other subscribers.
        }
      }
    })
    return targets.length
  }

  return {
    kind: 'memory',
    async publish(channel, message) {
      return publish(channel, message)
    },
    async publishMany(messages) {
      for (const [channel, message] of messages) publish(channel, message)
    },
    async subscribe(channels, onMessage): Promise<Subscription> {
      for (const ch of channels) {
        let set = subscribers.get(ch)
        if (!set) subscribers.set(ch, (set = new Set()))
        set.add(onMessage)
      }
      let closed = false
      return {
        async close() {
          if (closed) return
          closed = true
          for (const ch of channels) {
            const set = subscribers.get(ch)
            set?.delete(onMessage)
            if (set && set.size === 0) subscribers.delete(ch)
          }
        },
      }
    },
    async get(key) {
      return live(key)?.value ?? null
    },
    async set(key, value, opts: SetOptions = {}) {
      sweep()
      if (opts.onlyIfAbsent && live(key)) return false
      store.set(key, { value, expiresAt: opts.ttlSeconds ? now() + opts.ttlSeconds * 1000 : null })
      return true
    },
    async del(key) {
      store.delete(key)
    },
    async incr(key, by = 1, ttlSeconds) {
      sweep()
      const e = live(key)
      if (e) {
        const n = Number(e.value)
        if (!Number.isInteger(n)) throw new Error('value is not an integer')
        e.value = String(n + by)
        return n + by
      }
      store.set(key, { value: String(by), expiresAt: ttlSeconds ? now() + ttlSeconds * 1000 : null })
      return by
    },
    async ttl(key) {
      const e = live(key)
      if (!e) return -2
      if (e.expiresAt === null) return -1
      return Math.ceil((e.expiresAt - now()) / 1000)
    },
    async ping() {},
    async close() {
      subscribers.clear()
      store.clear()
    },
  }
}
