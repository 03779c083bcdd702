/** The gateway's per-process (Node) or per-isolate (workerd) state (lib/state.ts), and a bounded TTL cache. */
import type { Services } from '../services.ts'
import { scopedState } from '../state.ts'

/** The gateway state named `name` for this process or isolate and deployment, made on first use. */
export const gatewayState = <T>(services: Services, name: string, make: () => T): T =>
  scopedState(services, `gateway:${name}`, make)

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
