/**
 * Per-process (Node) or per-isolate (workerd) state for caches (auth's key set and verified tokens, the
 * gateway's caches and usage buffer), one set per deployment (database, schema, bus prefix). Plain data
 * and CryptoKeys only: never a socket or a pending I/O promise, which workerd forbids sharing between
 * requests.
 */
import type { Services } from './services.ts'

const byServices = new WeakMap<Services, Map<string, unknown>>()
const byName = new Map<string, Map<string, unknown>>()

/**
 * True when the host built these services once for the whole process (the Node host marks them with
 * `lifecycle`), so long-lived subscriptions and background refreshes may hang off them. On workerd the
 * services are rebuilt for every request and this is false.
 */
export const isLongLived = (services: Services): boolean => services.lifecycle !== undefined

// Per-request services of one deployment share state through a key naming the database and schema.
const deploymentKey = (services: Services) =>
  `${services.config.DATABASE_URL ?? 'embedded'}\u0000${services.db.schema}\u0000${services.config.NEXUS_BUS_PREFIX}`

/** Returns the state named `name` for this process or isolate and deployment, making it on first use. */
export const scopedState = <T>(services: Services, name: string, make: () => T): T => {
  let bag: Map<string, unknown> | undefined
  if (isLongLived(services)) {
    bag = byServices.get(services)
    if (!bag) byServices.set(services, (bag = new Map()))
  } else {
    const key = deploymentKey(services)
    bag = byName.get(key)
    if (!bag) byName.set(key, (bag = new Map()))
  }
  let value = bag.get(name) as T | undefined
  if (value === undefined) bag.set(name, (value = make()))
  return value
}

/** A small TTL cache with a size bound: the oldest entries go first, so memory stays flat. */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>()
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key)
    if (!e) return undefined
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key)
      return undefined
    }
    return e.value
  }

  set(key: string, value: V): void {
    this.entries.delete(key)
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs })
  }

  delete(key: string): void {
    this.entries.delete(key)
  }

  clear(): void {
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }
}
