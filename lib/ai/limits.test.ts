/** Per-key limits over the bus (the in-process driver here; the same calls go to Redis). */
import { describe, expect, it } from 'vitest'
import { createMemoryBus } from '../bus/index.ts'
import { ApiError } from '../errors.ts'
import { chargeTokens, checkLimits } from './limits.ts'
import type { GatewayKey } from './keys.ts'

const key = (over: Partial<GatewayKey>): GatewayKey => ({
  id: crypto.randomUUID(),
  name: 'k',
  key_prefix: 'nx-abcdef',
  allowed_models: null,
  rpm_limit: null,
  tpm_limit: null,
  budget_tokens: null,
  used_tokens: 0,
  created_by: null,
  created_at: new Date().toISOString(),
  expires_at: null,
  revoked_at: null,
  last_used_at: null,
  ...over,
})

const at = (second: number) => Date.UTC(2030, 0, 1, 12, 0, 0) + second * 1000

describe('limits', () => {
  it('counts requests per fixed minute, with Retry-After the rest of the window', async () => {
    const bus = createMemoryBus({ now: () => at(45) })
    const k = key({ rpm_limit: 2 })
    await checkLimits(bus, k, at(45))
    await checkLimits(bus, k, at(46))
    const err = (await checkLimits(bus, k, at(50)).catch((e) => e)) as ApiError
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'rate_limit_error' })
    expect(err.headers['retry-after']).toBe('10')
    // The next minute is a new window.
    await checkLimits(bus, k, at(61))
  })

  it('refuses once the minute\'s tokens reach the limit', async () => {
    const bus = createMemoryBus()
    const k = key({ tpm_limit: 100 })
    await checkLimits(bus, k, at(1))
    await chargeTokens(bus, k, 60, at(1))
    await checkLimits(bus, k, at(2))
    await chargeTokens(bus, k, 60, at(2))
    expect(await checkLimits(bus, k, at(3)).catch((e) => e)).toMatchObject({ status: 429, code: 'rate_limit_exceeded' })
    await checkLimits(bus, k, at(60))
  })

  it('starts a budget from what the database counted and stops at it, telling clients not to retry', async () => {
    const bus = createMemoryBus()
    const k = key({ budget_tokens: 1000, used_tokens: 990 })
    await checkLimits(bus, k)
    await chargeTokens(bus, k, 15)
    const err = (await checkLimits(bus, k).catch((e) => e)) as ApiError
    expect(err).toMatchObject({ status: 429, code: 'insufficient_quota' })
    expect(err.headers['x-should-retry']).toBe('false')
  })

  it('does nothing for a key without limits', async () => {
    const bus = createMemoryBus()
    const k = key({})
    for (let i = 0; i < 100; i++) await checkLimits(bus, k)
    await chargeTokens(bus, k, 10_000)
  })
})
