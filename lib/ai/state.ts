/**
 * The gateway's per-process (Node) or per-isolate (workerd) state: caches and the usage buffer, one
 * set per deployment (database, schema, bus prefix). Plain data only, never a socket or a pending I/O
 * promise shared across requests on workerd.
 */
import type { Services } from '../services.ts'

/**
 * True when the host built these services once for the process (the Node host gives them a
 * `lifecycle`): pending loads may then be shared between requests, and timers outlive a request.
 */
export const isLongLived = (services: Services): boolean => services.lifecycle !== undefined

const byServices = new WeakMap<Services, Map<string, unknown>>()
const byDeployment = new Map<string, Map<string, unknown>>()

const deploymentKey = (services: Services) =>
  `${services.config.DATABASE_URL ?? 'embedded'}\u0000${services.db.schema}\u0000${services.config.NEXUS_BUS_PREFIX}`

/** The gateway state named `name` for this process or isolate and deployment, made on first use. */
export const gatewayState = <T>(services: Services, name: string, make: () => T): T => {
  let bag: Map<string, unknown> | undefined
  if (isLongLived(services)) {
    bag = byServices.get(services)
    if (!bag) byServices.set(services, (bag = new Map()))
  } else {
    const key = deploymentKey(services)
    bag = byDeployment.get(key)
    if (!bag) byDeployment.set(key, (bag = new Map()))
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
