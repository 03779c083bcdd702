/** The Bus contract: one vitest suite every driver must pass, so memory, Redis and Upstash behave the same. */
import { afterEach, describe, expect, it as vitestIt } from 'vitest'
import type { Bus } from './types.ts'

export interface BusUnderTest {
  bus: Bus
  /** Runs after the suite has closed the bus, e.g. to delete the test's keys from a shared Redis. */
  cleanup?: () => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls until `check` holds, failing after `timeoutMs`. */
const waitFor = async (check: () => boolean | Promise<boolean>, timeoutMs = 3_000) => {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`)
    await sleep(10)
  }
}

export interface BusContractOptions {
  /**
   * Test title -> why this driver is known to fail it. Those tests are skipped, with the reason in their
   * title, so a known defect stays visible in every run instead of failing it; delete the entry with the fix.
   */
  knownIssues?: Record<string, string>
}

/**
 * Declares the contract suite for one driver. `make` runs for each test (twice in the prefix test) and
 * must return a bus on the same backend with a fresh, unique prefix each time; the suite closes every bus
 * it made and then runs its `cleanup`.
 */
export const busContract = (name: string, make: () => Promise<BusUnderTest>, options: BusContractOptions = {}) => {
  const known = new Map(Object.entries(options.knownIssues ?? {}))
  const it = (title: string, fn: () => Promise<void>) => {
    const issue = known.get(title)
    if (issue === undefined) return vitestIt(title, fn)
    known.delete(title)
    vitestIt.skip(`${title} (known issue: ${issue})`, fn)
  }
  describe(name, () => {
    const made: BusUnderTest[] = []
    const open = async () => {
      const m = await make()
      made.push(m)
      return m.bus
    }
    afterEach(async () => {
      for (const m of made.splice(0)) {
        await m.bus.close()
        await m.cleanup?.()
      }
    })

    it('round-trips values through set, get and del', async () => {
      const bus = await open()
      // Values a serializer or an encoding layer would be tempted to touch: JSON, base64, "OK", empty.
      const values = [
        'plain',
        '',
        'héllo wörld — ✓ 🚀 日本語 ﷽ e\u0301 \u0000 end',
        '{"json":true,"n":1}',
        '123',
        'null',
        'true',
        'aGVsbG8=',
        'OK',
        ' padded\t\r\nlines ',
      ]
      for (const [i, value] of values.entries()) {
        expect(await bus.set(`k${i}`, value)).toBe(true)
        expect(await bus.get(`k${i}`)).toBe(value)
      }
      expect(await bus.set('k0', 'replaced')).toBe(true)
      expect(await bus.get('k0')).toBe('replaced')
      expect(await bus.get('missing')).toBeNull()
      await bus.del('k0')
      expect(await bus.get('k0')).toBeNull()
      await expect(bus.del('never-existed')).resolves.toBeUndefined()
    })

    it('stores large values intact', async () => {
      const bus = await open()
      const ascii = 'x'.repeat(512 * 1024)
      const unicode = 'aé€🚀'.repeat(40_000) // about 400 KB of UTF-8 with 1- to 4-byte characters
      await bus.set('ascii', ascii)
      await bus.set('unicode', unicode)
      expect(await bus.get('ascii')).toBe(ascii)
      expect(await bus.get('unicode')).toBe(unicode)
    })

    it('expires a key after its TTL, and a plain set clears a TTL', async () => {
      const bus = await open()
      await bus.set('short', 'v', { ttlSeconds: 1 })
      await bus.set('cleared', 'v', { ttlSeconds: 1 })
      await bus.set('cleared', 'w')
      expect(await bus.get('short')).toBe('v')
      const t = await bus.ttl('short')
      expect(t).toBeGreaterThanOrEqual(0)
      expect(t).toBeLessThanOrEqual(1)
      expect(await bus.ttl('cleared')).toBe(-1)
      await sleep(1_200)
      expect(await bus.get('short')).toBeNull()
      expect(await bus.ttl('short')).toBe(-2)
      expect(await bus.get('cleared')).toBe('w')
      // An expired key counts as absent for onlyIfAbsent.
      expect(await bus.set('short', 'again', { onlyIfAbsent: true })).toBe(true)
      expect(await bus.get('short')).toBe('again')
    })

    it('sets onlyIfAbsent only when the key is absent', async () => {
      const bus = await open()
      expect(await bus.set('nx', 'first', { onlyIfAbsent: true })).toBe(true)
      expect(await bus.set('nx', 'second', { onlyIfAbsent: true })).toBe(false)
      expect(await bus.get('nx')).toBe('first')
      await bus.del('nx')
      expect(await bus.set('nx', 'third', { onlyIfAbsent: true, ttlSeconds: 10 })).toBe(true)
      expect(await bus.get('nx')).toBe('third')
      const t = await bus.ttl('nx')
      expect(t).toBeGreaterThanOrEqual(9)
      expect(t).toBeLessThanOrEqual(10)
    })

    it('counts atomically under 200 concurrent increments', async () => {
      const bus = await open()
      const results = await Promise.all(Array.from({ length: 200 }, () => bus.incr('hits')))
      expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
      expect(await bus.get('hits')).toBe('200')
    })

    it('increments by any integer step, without expiry unless asked', async () => {
      const bus = await open()
      expect(await bus.incr('step', 5)).toBe(5)
      expect(await bus.incr('step', -7)).toBe(-2)
      expect(await bus.incr('step')).toBe(-1)
      expect(await bus.ttl('step')).toBe(-1)
      await bus.set('text', 'not a number')
      await expect(bus.incr('text')).rejects.toThrow()
    })

    it('sets a counter window once and never extends it', async () => {
      const bus = await open()
      expect(await bus.incr('window', 1, 1)).toBe(1)
      const t = await bus.ttl('window')
      expect(t).toBeGreaterThanOrEqual(0)
      expect(t).toBeLessThanOrEqual(1)
      await sleep(600)
      expect(await bus.incr('window', 1, 1)).toBe(2) // must not push the expiry out
      expect(await bus.incr('window', 1, 10)).toBe(3) // nor replace it with a longer one
      expect(await bus.ttl('window')).toBeLessThanOrEqual(1)
      await sleep(650) // now past the first call's window
      expect(await bus.get('window')).toBeNull()
      expect(await bus.incr('window', 1, 1)).toBe(1)
      expect(await bus.ttl('window')).toBeGreaterThanOrEqual(0)
    })

    it('reports TTL as Redis does: -2 absent, -1 without expiry, else seconds left', async () => {
      const bus = await open()
      expect(await bus.ttl('absent')).toBe(-2)
      await bus.set('forever', 'v')
      expect(await bus.ttl('forever')).toBe(-1)
      await bus.set('ten', 'v', { ttlSeconds: 10 })
      const t = await bus.ttl('ten')
      expect(t).toBeGreaterThanOrEqual(9)
      expect(t).toBeLessThanOrEqual(10)
    })

    it('isolates buses with different prefixes: keys, counters and messages', async () => {
      const a = await open()
      const b = await open()
      await a.set('shared', 'A')
      expect(await b.get('shared')).toBeNull()
      await b.set('shared', 'B')
      expect(await a.get('shared')).toBe('A')
      expect(await a.incr('n')).toBe(1)
      expect(await b.incr('n')).toBe(1)
      const got: string[] = []
      await a.subscribe(['news'], (_channel, message) => got.push(message))
      expect(await b.publish('news', 'from b')).toBe(0)
      expect(await a.publish('news', 'from a')).toBe(1)
      await waitFor(() => got.length >= 1)
      await sleep(50)
      expect(got).toEqual(['from a'])
    })

    it('delivers 100 messages in publish order, intact', async () => {
      const bus = await open()
      const got: [string, string][] = []
      await bus.subscribe(['ordered'], (channel, message) => got.push([channel, message]))
      const special = ['', 'two\nlines', '{"json":1}', 'comma,separated,words', 'ünïcødé 🚀', 'data: fake\n\nevent']
      const sent = Array.from({ length: 100 }, (_, i) => special[i % 10] ?? `message ${i}`)
      for (const message of sent) expect(await bus.publish('ordered', message)).toBe(1)
      await waitFor(() => got.length >= sent.length)
      await sleep(50)
      expect(got).toEqual(sent.map((m) => ['ordered', m]))
    })

    it('publishes many messages at once, each channel in order', async () => {
      const bus = await open()
      const got: [string, string][] = []
      await bus.subscribe(['many-a', 'many-b'], (channel, message) => got.push([channel, message]))
      const sent: Array<[string, string]> = Array.from({ length: 20 }, (_, i) => [i % 3 === 0 ? 'many-b' : 'many-a', `m${i} ünï\n`])
      await bus.publishMany(sent)
      await bus.publishMany([])
      await waitFor(() => got.length >= sent.length)
      await sleep(50)
      // Order holds per channel (the Upstash driver follows each channel on a stream of its own).
      for (const channel of ['many-a', 'many-b']) expect(got.filter(([c]) => c === channel)).toEqual(sent.filter(([c]) => c === channel))
      expect(got).toHaveLength(sent.length)
    })

    it('resolves subscribe only once messages published right after are received', async () => {
      const bus = await open()
      for (let i = 0; i < 5; i++) {
        const got: string[] = []
        const sub = await bus.subscribe([`live${i}`], (_channel, message) => got.push(message))
        expect(await bus.publish(`live${i}`, 'right away')).toBe(1)
        await waitFor(() => got.length === 1)
        await sub.close()
      }
    })

    it('subscribes to several channels and names each message by channel', async () => {
      const bus = await open()
      const odd = 'odd name/with,comma?and#hash%20'
      const got: [string, string][] = []
      await bus.subscribe(['alpha', 'beta', odd], (channel, message) => got.push([channel, message]))
      await bus.publish('alpha', '1')
      await bus.publish('gamma', 'not subscribed')
      await bus.publish('beta', '2')
      await bus.publish(odd, '3')
      await waitFor(() => got.length >= 3)
      await sleep(50)
      expect(got.sort()).toEqual([
        ['alpha', '1'],
        ['beta', '2'],
        [odd, '3'],
      ])
    })

    it('stops delivery on close() and releases the subscriber', async () => {
      const bus = await open()
      const got: string[] = []
      const sub = await bus.subscribe(['closing'], (_channel, message) => got.push(message))
      await bus.publish('closing', 'before')
      await waitFor(() => got.length === 1)
      await sub.close()
      await sub.close() // idempotent
      await bus.publish('closing', 'after')
      // Redis counts a subscriber until its connection is gone: the count reaching 0 shows it was released.
      await waitFor(async () => (await bus.publish('closing', 'probe')) === 0)
      await sleep(50)
      expect(got).toEqual(['before'])
    })

    it('returns the number of receivers from publish', async () => {
      const bus = await open()
      expect(await bus.publish('count', 'nobody')).toBe(0)
      await bus.subscribe(['count'], () => undefined)
      await bus.subscribe(['count', 'other'], () => undefined)
      expect(await bus.publish('count', 'x')).toBe(2)
      expect(await bus.publish('other', 'x')).toBe(1)
    })

    it('keeps delivering after a handler throws', async () => {
      const bus = await open()
      const got: string[] = []
      await bus.subscribe(['fragile'], (_channel, message) => {
        got.push(message)
        if (message === 'boom') throw new Error('handler failed')
      })
      await bus.publish('fragile', 'boom')
      await bus.publish('fragile', 'next')
      await waitFor(() => got.length >= 2)
      expect(got).toEqual(['boom', 'next'])
    })

    it('answers ping', async () => {
      const bus = await open()
      await expect(bus.ping()).resolves.toBeUndefined()
    })

    // A known issue naming no test would silently excuse nothing: a renamed test must not lose its entry.
    if (known.size > 0) throw new Error(`knownIssues name no test: ${[...known.keys()].join(', ')}`)
  })
}
