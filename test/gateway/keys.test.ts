/**
 * Gateway keys end to end: the admin API (who may use it, create shown once, list without secrets,
 * change, revoke), keys and access tokens on /v1, allowed models, and the rpm / tpm / budget limits
 * the SDK meets as RateLimitError.
 */
import OpenAI from 'openai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { bearer, describeRuntimes, expectEnvelope, loginAs, type TestHost } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY, eventually, openai } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const double = await startOllamaDouble()
afterAll(() => double.close())
beforeEach(() => double.reset())

const master = bearer(MASTER_KEY)
const hi = [{ role: 'user' as const, content: 'hi' }]

const createKey = async (host: TestHost, body: Record<string, unknown>) => {
  const res = await host.json('POST', '/api/v1/gateway/keys', body, master)
  expect(res.status, res.text).toBe(201)
  return res.body as { id: string; key: string; key_prefix: string } & Record<string, unknown>
}

/** Waits out the last seconds of a minute, so a test of a per-minute window runs inside one window. */
const freshWindow = async () => {
  const left = 60 - ((Date.now() / 1000) % 60)
  if (left < 8) await new Promise((r) => setTimeout(r, left * 1000 + 100))
}

describeRuntimes(
  'gateway keys and limits',
  (host) => {
    it('lets only the master key and admins use the admin API', async () => {
      const key = await createKey(host(), { name: 'probe' })
      expectEnvelope(await host().json('GET', '/api/v1/gateway/keys'), 401)
      expectEnvelope(await host().json('GET', '/api/v1/gateway/keys', undefined, bearer('not-the-master-key')), 401)
      expectEnvelope(await host().json('GET', '/api/v1/gateway/keys', undefined, bearer(key.key)), 403, 'FORBIDDEN')
      expectEnvelope(await host().json('GET', '/api/v1/gateway/usage', undefined, bearer(await loginAs(host(), 'viewer'))), 403, 'FORBIDDEN')
      expectEnvelope(await host().json('GET', '/api/v1/gateway/aliases', undefined, bearer(await loginAs(host(), 'operator'))), 403)
      expect((await host().json('GET', '/api/v1/gateway/keys', undefined, bearer(await loginAs(host(), 'admin')))).status).toBe(200)
      expect((await host().json('GET', '/api/v1/gateway/keys', undefined, master)).status).toBe(200)
    })

    it('creates a key shown once, lists keys without secrets, and the key works with the SDK', async () => {
      const created = await createKey(host(), { name: 'ci bot', rpm_limit: 100, allowed_models: null })
      expect(created.key).toMatch(/^nx-[A-Za-z0-9_-]{43}$/)
      expect(created.key.startsWith(created.key_prefix)).toBe(true)
      expect(created).toMatchObject({ name: 'ci bot', rpm_limit: 100, tpm_limit: null, budget_tokens: null, revoked_at: null })
      const list = await host().json('GET', '/api/v1/gateway/keys', undefined, master)
      expect(list.status).toBe(200)
      expect(list.text).not.toContain(created.key)
      expect(list.text).not.toMatch(/key_hash/)
      expect(list.body.keys.find((k: { id: string }) => k.id === created.id)).toMatchObject({ name: 'ci bot', key_prefix: created.key_prefix })
      const one = await host().json('GET', `/api/v1/gateway/keys/${created.id}`, undefined, master)
      expect(one.body).not.toHaveProperty('key')
      const res = await openai(host(), created.key).chat.completions.create({ model: 'gpt-4o', messages: hi })
      expect(res.choices[0]!.message.content).toBeTruthy()
      // Never in a log line either.
      expect(host().logs.join('\n')).not.toContain(created.key)
    })

    it('refuses a revoked key with AuthenticationError', async () => {
      const created = await createKey(host(), { name: 'to revoke' })
      const client = openai(host(), created.key)
      await client.chat.completions.create({ model: 'gpt-4o', messages: hi })
      const revoked = await host().json('DELETE', `/api/v1/gateway/keys/${created.id}`, undefined, master)
      expect(revoked.status).toBe(200)
      expect(revoked.body.revoked_at).toBeTruthy()
      // At once, in every process and isolate (the key API moves an epoch on the bus that lookups check).
      const err = await client.chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((x) => x)
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError)
      expect(err.message).toMatch(/revoked/)
      expect((await host().json('DELETE', `/api/v1/gateway/keys/${created.id}`, undefined, master)).body.revoked_at).toBe(revoked.body.revoked_at)
    })

    it('answers a model the key may not use with 403 (PermissionDeniedError) and lists only its models', async () => {
      const created = await createKey(host(), { name: 'narrow', allowed_models: ['gpt-4o-mini'] })
      const client = openai(host(), created.key)
      expect((await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi })).model).toBe('gpt-4o-mini')
      const err = await client.chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError)
      expect(err.code).toBe('MODEL_NOT_ALLOWED')
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(['gpt-4o-mini'])
      expect(double.chats()).toHaveLength(1)
    })

    it('limits requests per minute: the third of rpm 2 is a RateLimitError with Retry-After', async () => {
      const created = await createKey(host(), { name: 'rpm', rpm_limit: 2 })
      const client = openai(host(), created.key)
      await freshWindow()
      await client.chat.completions.create({ model: 'gpt-4o', messages: hi })
      await client.chat.completions.create({ model: 'gpt-4o', messages: hi })
      const err = await client.chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.RateLimitError)
      expect(err.code).toBe('rate_limit_exceeded')
      expect(err.type).toBe('rate_limit_error')
      const retryAfter = Number(err.headers.get('retry-after'))
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(60)
      expect(double.chats()).toHaveLength(2)
    })

    it('limits tokens per minute with the real counts Ollama reported', async () => {
      const created = await createKey(host(), { name: 'tpm', tpm_limit: 10 })
      const client = openai(host(), created.key)
      await freshWindow()
      double.defaultScript = { text: 'a b c', promptEvalCount: 12, evalCount: 3 }
      await client.chat.completions.create({ model: 'gpt-4o', messages: hi })
      // The 15 tokens are charged as the request finishes; the next request in the window is refused.
      const err = await eventually(async () => {
        const e = await client.chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((x) => x)
        return e instanceof OpenAI.RateLimitError ? e : undefined
      })
      expect(err.message).toMatch(/tokens per minute/)
    })

    it('stops a key at its token budget with 429 insufficient_quota that tells the SDK not to retry', async () => {
      const created = await createKey(host(), { name: 'budget', budget_tokens: 20 })
      const client = openai(host(), created.key)
      double.defaultScript = { text: 'a b c', promptEvalCount: 12, evalCount: 3 }
      await client.chat.completions.create({ model: 'gpt-4o', messages: hi })
      const err = await eventually(async () => {
        const e = await client.chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((x) => x)
        return e instanceof OpenAI.RateLimitError ? e : undefined
      })
      expect(err.code).toBe('insufficient_quota')
      expect(err.headers.get('x-should-retry')).toBe('false')
      expect(err.headers.get('retry-after')).toBeTruthy()
      // The database keeps the total, off the hot path.
      await eventually(async () => {
        const k = await host().json('GET', `/api/v1/gateway/keys/${created.id}`, undefined, master)
        return k.body.used_tokens >= 20 && k.body.last_used_at
      })
    })

    it('changes a key with PATCH, in effect at once', async () => {
      const created = await createKey(host(), { name: 'patch me' })
      const client = openai(host(), created.key)
      await client.chat.completions.create({ model: 'gpt-4o', messages: hi })
      const patched = await host().json('PATCH', `/api/v1/gateway/keys/${created.id}`, { name: 'patched', rpm_limit: 5, allowed_models: ['gpt-4'] }, master)
      expect(patched.status).toBe(200)
      expect(patched.body).toMatchObject({ name: 'patched', rpm_limit: 5, allowed_models: ['gpt-4'] })
      expect(await client.chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((e) => e)).toBeInstanceOf(OpenAI.PermissionDeniedError)
      const cleared = await host().json('PATCH', `/api/v1/gateway/keys/${created.id}`, { rpm_limit: null }, master)
      expect(cleared.body.rpm_limit).toBeNull()
    })

    it('answers bad admin input with 4xx in the envelope', async () => {
      const post = (body: unknown) => host().json('POST', '/api/v1/gateway/keys', body, master)
      expectEnvelope(await post({}), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ name: 'x', rpm_limit: 0 }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ name: 'x', allowed_models: ['bad model name!'] }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ name: 'x', expires_at: 'tomorrow' }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post('{"name":'), 400, 'INVALID_JSON')
      expectEnvelope(await host().json('GET', '/api/v1/gateway/keys/not-a-uuid', undefined, master), 404)
      expectEnvelope(await host().json('DELETE', '/api/v1/gateway/keys/00000000-0000-4000-8000-000000000000', undefined, master), 404)
      expectEnvelope(await host().json('PATCH', '/api/v1/gateway/keys/00000000-0000-4000-8000-000000000000', {}, master), 400)
    })

    it('refuses an expired key', async () => {
      const created = await createKey(host(), { name: 'short-lived', expires_at: new Date(Date.now() - 1000).toISOString() })
      const err = await openai(host(), created.key).chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError)
      expect(err.message).toMatch(/expired/)
    })

    it('accepts an access token from /api/v1/auth on /v1, and refuses a bad one as invalid_api_key', async () => {
      const token = await loginAs(host(), 'viewer')
      const res = await openai(host(), token).chat.completions.create({ model: 'gpt-4o', messages: hi })
      expect(res.choices[0]!.message.content).toBeTruthy()
      const tampered = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
      const err = await openai(host(), tampered).chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError)
      expect(err.code).toBe('invalid_api_key')
    })
  },
  { env: { OLLAMA_BASE_URL: double.url, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)
