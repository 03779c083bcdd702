/** The Prometheus registry's text format. */
import { describe, expect, it } from 'vitest'
import { Registry } from './metrics.ts'

describe('Registry', () => {
  it('renders counters, gauges and cumulative histogram buckets', async () => {
    const r = new Registry()
    r.counter('x_total', 'Xs.').inc({ a: 'q"uote\\' }, 2)
    const g = r.gauge('depth', 'Depth.')
    g.collect(() => g.set(7))
    const h = r.histogram('lat', 'Latency.', [0.1, 1])
    h.observe(0.05)
    h.observe(0.5)
    h.observe(5)
    const text = await r.render()
    expect(text).toContain('x_total{a="q\\"uote\\\\"} 2')
    expect(text).toContain('depth 7')
    expect(text).toContain('lat_bucket{le="0.1"} 1')
    expect(text).toContain('lat_bucket{le="1"} 2')
    expect(text).toContain('lat_bucket{le="+Inf"} 3')
    expect(text).toContain('lat_count 3')
    expect(text).toContain('lat_sum 5.55')
  })

  it('returns the same metric for the same name and refuses a type clash', () => {
    const r = new Registry()
    expect(r.counter('a', 'A')).toBe(r.counter('a', 'A'))
    expect(() => r.gauge('a', 'A')).toThrow(/another type/)
  })

  it('keeps a failing collector from failing the scrape', async () => {
    const r = new Registry()
    r.gauge('g', 'G').collect(() => {
      throw new Error('db down')
    })
    await expect(r.render()).resolves.toContain('# TYPE g gauge')
  })
})

describe('label values', () => {
  it('escapes backslashes, newlines and quotes, and leaves plain values as they are', () => {
    const r = new Registry()
    const c = r.counter('escaped_total', 'Escaping.')
    c.inc({ path: 'a\\b', text: 'line\nnext', q: 'say "hi"', plain: 'ok' })
    c.inc({ plain: 'ok', q: 'say "hi"', text: 'line\nnext', path: 'a\\b' }) // same series, keys in another order
    expect(c.render()).toContain('escaped_total{path="a\\\\b",plain="ok",q="say \\"hi\\"",text="line\\nnext"} 2')
  })
})
