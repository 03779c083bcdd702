/** The fixed-window limiter over the bus: counts, refuses past the limit with the time left, resets with the window. */
import { describe, expect, it } from 'vitest'
import { createMemoryBus } from '../bus/index.ts'
import { ApiError } from '../errors.ts'
import { enforceRateLimit, hitWindow } from './rate-limit.ts'

describe('hitWindow', () => {
  it('allows `limit` hits per window, then refuses with the seconds left; a new window starts fresh', async () => {
    let now = 1_000_000
    const bus = createMemoryBus({ now: () => now })
    const rule = { limit: 3, windowSeconds: 60 }
    const results = []
    for (let i = 0; i < 4; i++) results.push(await hitWindow(bus, 'x', rule))
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false])
    expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0])
    expect(results[3]!.retryAfter).toBe(60)
    now += 45_000
    expect((await hitWindow(bus, 'x', rule)).retryAfter).toBe(15)
    now += 15_001
    expect(await hitWindow(bus, 'x', rule)).toMatchObject({ allowed: true, count: 1 })
  })

  it('keeps keys apart', async () => {
    const bus = createMemoryBus()
    const rule = { limit: 1, windowSeconds: 60 }
    expect((await hitWindow(bus, 'a', rule)).allowed).toBe(true)
    expect((await hitWindow(bus, 'b', rule)).allowed).toBe(true)
    expect((await hitWindow(bus, 'a', rule)).allowed).toBe(false)
  })
})

describe('enforceRateLimit', () => {
  it('throws 429 RATE_LIMITED with Retry-After', async () => {
    const bus = createMemoryBus()
    const rule = { limit: 1, windowSeconds: 30 }
    await enforceRateLimit(bus, 'k', rule)
    const err = await enforceRateLimit(bus, 'k', rule).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 429, code: 'RATE_LIMITED', type: 'rate_limit_error' })
    expect((err as ApiError).headers['retry-after']).toBe('30')
  })
})
