/** The usage log (written off the hot path, queried by admins) and the gateway's Prometheus metrics. */
import OpenAI from 'openai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { bearer, describeRuntimes, expectEnvelope } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY, eventually, openai } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const double = await startOllamaDouble()
afterAll(() => double.close())
beforeEach(() => double.reset())

const master = bearer(MASTER_KEY)
const hi = [{ role: 'user' as const, content: 'hi' }]

describeRuntimes(
  'gateway usage log and metrics',
  (host, runtime) => {
    it('logs one row per request with key, alias, upstream model, host, tokens, latency, time to first token and status', async () => {
      const key = (await host().json('POST', '/api/v1/gateway/keys', { name: 'usage' }, master)).body
      const client = openai(host(), key.key)
      double.enqueue({ text: 'a b', promptEvalCount: 30, evalCount: 2 }, { text: 'c d e', promptEvalCount: 40, evalCount: 3, chunkDelayMs: 20 })
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi })
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi, stream: true })
      for await (const _ of stream) void _
      await client.chat.completions.create({ model: 'missing-model', messages: hi }).catch((e) => e)
      await client.embeddings.create({ model: 'nomic-embed-text:latest', input: ['one two'] })

      const rows = await eventually(async () => {
        const res = await host().json('GET', `/api/v1/gateway/usage?key_id=${key.id}`, undefined, master)
        return res.body.usage?.length === 4 ? res.body.usage : undefined
      })
      const [embed, missing, streamed, whole] = rows // newest first
      expect(whole).toMatchObject({
        key_id: key.id,
        subject: `key:${key.key_prefix}`,
        model: 'gpt-4o-mini',
        upstream_model: 'llama3.2:3b',
        host: new URL(double.url).host,
        stream: false,
        prompt_tokens: 30,
        completion_tokens: 2,
        status: 200,
        error_code: null,
        ttft_ms: null,
      })
      expect(whole.latency_ms).toBeGreaterThanOrEqual(0)
      expect(streamed).toMatchObject({ stream: true, prompt_tokens: 40, completion_tokens: 3, status: 200 })
      expect(streamed.ttft_ms).toBeGreaterThanOrEqual(0)
      expect(streamed.latency_ms).toBeGreaterThanOrEqual(streamed.ttft_ms)
      expect(missing).toMatchObject({ model: 'missing-model', status: 404, error_code: 'model_not_found', prompt_tokens: 0 })
      expect(embed).toMatchObject({ model: 'nomic-embed-text:latest', status: 200, prompt_tokens: 2 })
    })

    it('aggregates per model and key per time bucket, and filters by model and time', async () => {
      const client = openai(host())
      await client.chat.completions.create({ model: 'claude-3-5-sonnet', messages: hi })
      await client.chat.completions.create({ model: 'claude-3-5-sonnet', messages: hi })
      const agg = await eventually(async () => {
        const res = await host().json('GET', '/api/v1/gateway/usage?bucket=minute&group_by=model,key&model=claude-3-5-sonnet', undefined, master)
        const total = (res.body.buckets ?? []).reduce((n: number, b: { requests: number }) => n + b.requests, 0)
        return total === 2 ? res.body : undefined
      })
      expect(agg.bucket).toBe('minute')
      expect(agg.group_by).toEqual(['model', 'key'])
      for (const b of agg.buckets) {
        expect(b).toMatchObject({ model: 'claude-3-5-sonnet', key_id: null, errors: 0 })
        expect(b.bucket).toMatch(/T\d\d:\d\d:00\.000Z$/)
        expect(b.prompt_tokens).toBeGreaterThan(0)
      }
      const future = new Date(Date.now() + 3_600_000).toISOString()
      const none = await host().json('GET', `/api/v1/gateway/usage?from=${encodeURIComponent(future)}&to=${encodeURIComponent(future)}`, undefined, master)
      expect(none.body.usage).toEqual([])
      expectEnvelope(await host().json('GET', '/api/v1/gateway/usage?bucket=week', undefined, master), 400, 'VALIDATION_FAILED')
      expectEnvelope(await host().json('GET', '/api/v1/gateway/usage?key_id=nope', undefined, master), 400, 'VALIDATION_FAILED')
      expectEnvelope(
        await host().json('GET', `/api/v1/gateway/usage?from=${encodeURIComponent(future)}&to=2020-01-01T00:00:00Z`, undefined, master),
        400,
      )
    })

    // Metrics are per process on Node; on workerd each worker's isolate has its own (docs/RUNTIMES.md).
    it.skipIf(runtime === 'workerd')('exposes requests, errors, tokens, time to first token and duration by model on /metrics', async () => {
      const client = openai(host())
      double.enqueue({ text: 'x y', promptEvalCount: 7, evalCount: 2 })
      const stream = await client.chat.completions.create({ model: 'gemini-pro', messages: hi, stream: true })
      for await (const _ of stream) void _
      await client.chat.completions.create({ model: 'https://example.com/not-a-model', messages: hi }).catch((e) => e)
      const text = await (await host().fetch('/metrics')).text()
      expect(text).toMatch(/^gateway_requests_total\{endpoint="chat",model="gemini-pro",status="200"\} 1$/m)
      expect(text).toMatch(/^gateway_prompt_tokens_total\{model="gemini-pro"\} 7$/m)
      expect(text).toMatch(/^gateway_completion_tokens_total\{model="gemini-pro"\} 2$/m)
      expect(text).toMatch(/^gateway_time_to_first_token_seconds_count\{model="gemini-pro"\} 1$/m)
      expect(text).toMatch(/^gateway_request_duration_seconds_bucket\{model="gemini-pro",le="\+Inf"\} 1$/m)
      // A name that is neither an alias nor a model Ollama has never becomes a label of its own.
      expect(text).toMatch(/^gateway_errors_total\{code="model_not_found",model="_unknown"\} [1-9]/m)
      expect(text).not.toContain('example.com')
      expect(text).toMatch(/^# TYPE gateway_time_to_first_token_seconds histogram$/m)
    })

    it('never writes a prompt, a key or a token to the log', async () => {
      const key = (await host().json('POST', '/api/v1/gateway/keys', { name: 'secret-check' }, master)).body
      const secretPrompt = 'my-very-private-prompt-8c1f'
      await openai(host(), key.key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: secretPrompt }] })
      double.enqueue({ text: 'a', errorAfter: 0 })
      const s = await openai(host(), key.key).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: secretPrompt }], stream: true })
      await (async () => {
        for await (const _ of s) void _
      })().catch(() => undefined)
      await openai(host(), 'nx-' + 'A'.repeat(43)).models.list().catch((e) => e)
      const logs = host().logs.join('\n')
      expect(logs).not.toContain(secretPrompt)
      expect(logs).not.toContain(key.key)
      expect(logs).not.toContain(MASTER_KEY)
      expect(await openai(host(), key.key).models.list().catch((e) => e)).not.toBeInstanceOf(OpenAI.APIError)
    })
  },
  { env: { OLLAMA_BASE_URL: double.url, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)
