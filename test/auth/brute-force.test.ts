/**
 * Brute-force protection and rate limits on each runtime: a username locks after repeated failures (429
 * with Retry-After) without touching other users, the lock ends after its window; a client locks after
 * failures across usernames; login and verify have per-client rate limits.
 */
import { describe, expect, it } from 'vitest'
import {
  bearer,
  createUser,
  describeRuntimes,
  expectEnvelope,
  login,
  TEST_ADMIN_PASSWORD,
  type TestHost,
} from '../support/harness.ts'

const loginRes = (host: TestHost, username: string, password: string) =>
  host.json('POST', '/api/v1/auth/login', { username, password })

describeRuntimes(
  'login lockout per username',
  (host, runtime) => {
    it('20 wrong passwords in a row: 429 before the 20th; another user is not affected; the right password works after the lock', async () => {
      const victim = await createUser(host(), ['operator'])
      const bystander = await createUser(host(), ['viewer'])

      const statuses: number[] = []
      let locked: Awaited<ReturnType<typeof loginRes>> | undefined
      for (let i = 0; i < 20; i++) {
        const res = await loginRes(host(), victim.username, `wrong-password-${i}`)
        statuses.push(res.status)
        if (res.status === 429) locked ??= res
        else expectEnvelope(res, 401, 'INVALID_CREDENTIALS')
      }
      const first429 = statuses.indexOf(429)
      expect(first429).toBeGreaterThanOrEqual(0)
      expect(first429).toBeLessThan(19) // the 20th attempt (index 19) is already refused
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401)) // NEXUS_LOGIN_MAX_FAILURES = 10
      expect(statuses.slice(first429).every((s) => s === 429)).toBe(true)
      const err = expectEnvelope(locked!, 429, 'LOGIN_LOCKED')
      expect(err.type).toBe('rate_limit_error')
      const retryAfter = Number(locked!.headers.get('retry-after'))
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(2) // NEXUS_LOGIN_LOCK_SECONDS

      // While locked, even the right password is refused, without saying whether it was right.
      const during = await loginRes(host(), victim.username, victim.password)
      expectEnvelope(during, 429, 'LOGIN_LOCKED')

      // Another user logs in, and a wrong password there is a plain 401.
      expect((await loginRes(host(), bystander.username, bystander.password)).status).toBe(200)
      expectEnvelope(await loginRes(host(), bystander.username, 'nope-nope'), 401, 'INVALID_CREDENTIALS')

      // After the lock window, the right password works.
      await new Promise((r) => setTimeout(r, retryAfter * 1000 + 300))
      const after = await loginRes(host(), victim.username, victim.password)
      expect(after.status).toBe(200)
      expect((await host().json('GET', '/api/v1/auth/me', undefined, bearer(after.body.access_token))).status).toBe(200)
    })

    it('locks an unknown username the same way, so a lock says nothing about existence', async () => {
      const ghost = `ghost-${Math.random().toString(36).slice(2, 8)}`
      const statuses: number[] = []
      for (let i = 0; i < 11; i++) statuses.push((await loginRes(host(), ghost, `wrong-${i}`)).status)
      expect(statuses).toEqual([...Array(10).fill(401), 429])
    })

    // Metrics are per process on Node; on workerd each function's isolate keeps its own (docs/RUNTIMES.md).
    it.runIf(runtime === 'node')('counts logins by result in /metrics', async () => {
      const text = await (await host().fetch('/metrics')).text()
      expect(text).toMatch(/^nexus_auth_logins_total\{result="invalid_credentials"\} [1-9]\d*$/m)
      expect(text).toMatch(/^nexus_auth_logins_total\{result="locked"\} [1-9]\d*$/m)
      expect(text).toMatch(/^nexus_auth_logins_total\{result="success"\} [1-9]\d*$/m)
    })
  },
  // A short lock so the test can wait it out; 10 failures per username (the default).
  { groups: ['auth', 'ops'], env: { NEXUS_LOGIN_LOCK_SECONDS: '2', NEXUS_LOGIN_MAX_FAILURES: '10', NEXUS_LOGIN_MAX_CLIENT_FAILURES: '1000' } },
)

describeRuntimes(
  'per-client lock and rate limits',
  (host) => {
    it('POST /api/v1/auth/verify: 429 with Retry-After past the per-client limit', async () => {
      const token = await login(host(), 'admin', TEST_ADMIN_PASSWORD)
      const statuses: number[] = []
      let limited: Awaited<ReturnType<typeof loginRes>> | undefined
      for (let i = 0; i < 5; i++) {
        const res = await host().json('POST', '/api/v1/auth/verify', { token })
        statuses.push(res.status)
        if (res.status === 429) limited ??= res
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429])
      expectEnvelope(limited!, 429, 'RATE_LIMITED')
      expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(Number(limited!.headers.get('retry-after'))).toBeLessThanOrEqual(60)
    })

    it('locks a client after failures spread over many usernames, whatever username it tries next', async () => {
      // One login above already counted against the 8-per-minute login limit.
      const statuses: number[] = []
      for (let i = 0; i < 5; i++) statuses.push((await loginRes(host(), `spray-${i}`, 'guess-guess')).status)
      expect(statuses).toEqual([401, 401, 401, 401, 401])
      const locked = await loginRes(host(), 'admin', TEST_ADMIN_PASSWORD)
      expectEnvelope(locked, 429, 'LOGIN_LOCKED')
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    })

    it('POST /api/v1/auth/login: 429 RATE_LIMITED past the per-client limit, even for malformed bodies', async () => {
      // 7 logins so far this minute; the 9th is over the limit of 8.
      expectEnvelope(await host().json('POST', '/api/v1/auth/login', '{broken'), 429, 'LOGIN_LOCKED')
      const over = await host().json('POST', '/api/v1/auth/login', '{broken')
      expectEnvelope(over, 429, 'RATE_LIMITED')
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    })
  },
  {
    groups: ['auth'],
    env: {
      NEXUS_VERIFY_RATE_LIMIT: '3',
      NEXUS_LOGIN_RATE_LIMIT: '8',
      NEXUS_LOGIN_MAX_CLIENT_FAILURES: '5',
      NEXUS_LOGIN_MAX_FAILURES: '100',
    },
  },
)
