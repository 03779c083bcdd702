/** A small Prometheus registry (counters, gauges, histograms) that runs on any runtime, rendered as text format 0.0.4. */

type Labels = Record<string, string | number>

const NEEDS_ESCAPE = /[\\\n"]/
const escapeLabel = (v: string) =>
  NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v
// Called for every observation (several per request): a plain loop, no intermediate arrays.
const labelKey = (labels: Labels | undefined): string => {
  if (!labels) return ''
  const keys = Object.keys(labels).sort()
  let key = ''
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    key += `${i ? ',' : ''}${k}="${escapeLabel(String(labels[k]))}"`
  }
  return key
}
const fmt = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN')
const withLabels = (name: string, key: string, extra?: string) => {
  const all = [key, extra].filter(Boolean).join(',')
  return all ? `${name}{${all}}` : name
}

interface Metric {
  readonly name: string
  render(): string
}

export class Counter implements Metric {
  private values = new Map<string, number>()
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels?: Labels, by = 1) {
    const key = labelKey(labels)
    this.values.set(key, (this.values.get(key) ?? 0) + by)
  }
  get(labels?: Labels) {
    return this.values.get(labelKey(labels)) ?? 0
  }
  render() {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`]
    for (const [key, v] of this.values) lines.push(`${withLabels(this.name, key)} ${fmt(v)}`)
    return lines.join('\n')
  }
}

export class Gauge implements Metric {
  private values = new Map<string, number>()
  private collector?: () => Promise<void> | void
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(value: number, labels?: Labels) {
    this.values.set(labelKey(labels), value)
  }
  inc(labels?: Labels, by = 1) {
    const key = labelKey(labels)
    this.values.set(key, (this.values.get(key) ?? 0) + by)
  }
  dec(labels?: Labels, by = 1) {
    this.inc(labels, -by)
  }
  get(labels?: Labels) {
    return this.values.get(labelKey(labels)) ?? 0
  }
  /** A function run before each scrape to refresh the value (e.g. a COUNT from the database). */
  collect(fn: () => Promise<void> | void) {
    this.collector = fn
    return this
  }
  async refresh() {
    await this.collector?.()
  }
  render() {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`]
    for (const [key, v] of this.values) lines.push(`${withLabels(this.name, key)} ${fmt(v)}`)
    return lines.join('\n')
  }
}

export const DEFAULT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export class Histogram implements Metric {
  private series = new Map<string, { counts: number[]; sum: number; count: number }>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[] = DEFAULT_BUCKETS,
  ) {}
  observe(value: number, labels?: Labels) {
    const key = labelKey(labels)
    let s = this.series.get(key)
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 }
      this.series.set(key, s)
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++
    s.sum += value
    s.count++
  }
  count(labels?: Labels) {
    return this.series.get(labelKey(labels))?.count ?? 0
  }
  render() {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    for (const [key, s] of this.series) {
      this.buckets.forEach((b, i) => lines.push(`${withLabels(`${this.name}_bucket`, key, `le="${fmt(b)}"`)} ${s.counts[i]}`))
      lines.push(`${withLabels(`${this.name}_bucket`, key, 'le="+Inf"')} ${s.count}`)
      lines.push(`${withLabels(`${this.name}_sum`, key)} ${fmt(s.sum)}`)
      lines.push(`${withLabels(`${this.name}_count`, key)} ${s.count}`)
    }
    return lines.join('\n')
  }
}

/** Holds metrics by name; `counter`/`gauge`/`histogram` return the existing metric when the name is taken. */
export class Registry {
  private metrics = new Map<string, Metric>()
  private getOrCreate<T extends Metric>(name: string, make: () => T, kind: new (...a: never[]) => T): T {
    const existing = this.metrics.get(name)
    if (existing) {
      if (!(existing instanceof kind)) throw new Error(`metric ${name} already registered with another type`)
      return existing
    }
    const m = make()
    this.metrics.set(name, m)
    return m
  }
  counter(name: string, help: string) {
    return this.getOrCreate(name, () => new Counter(name, help), Counter)
  }
  gauge(name: string, help: string) {
    return this.getOrCreate(name, () => new Gauge(name, help), Gauge)
  }
  histogram(name: string, help: string, buckets?: number[]) {
    return this.getOrCreate(name, () => new Histogram(name, help, buckets), Histogram)
  }
  /** Refreshes collected gauges (errors are swallowed: a scrape never fails for one stale gauge). */
  async render(): Promise<string> {
    await Promise.all(
      [...this.metrics.values()].map((m) => (m instanceof Gauge ? m.refresh().catch(() => undefined) : undefined)),
    )
    return [...this.metrics.values()].map((m) => m.render()).join('\n') + '\n'
  }
}

/** The metrics every function records through the shared wrapper. */
export const httpMetrics = (registry: Registry) => ({
  requests: registry.counter('cortex_request_count', 'HTTP requests served, by function, method, route and status.'),
  latency: registry.histogram('cortex_response_time', 'HTTP response time in seconds, by function, method and route.'),
})
