/**
 * The gateway's failures, as users meet them: bad keys, bad input (always a 4xx in the envelope, never a
 * 500), Ollama failing before and during an answer, a client that goes away, and Ollama down.
 */
import OpenAI from 'openai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { describeRuntimes, expectEnvelope } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY, eventually, openai, readSse } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const double = await startOllamaDouble()
afterAll(() => double.close())
beforeEach(() => double.reset())

const hi = [{ role: 'user' as const, content: 'hi' }]
const auth = { authorization: `Bearer ${MASTER_KEY}` }

describeRuntimes(
  'gateway errors',
  (host, runtime) => {
    it('answers a wrong key with 401 invalid_api_key, which the SDK raises as AuthenticationError', async () => {
      for (const key of ['sk-not-a-key', 'nx-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'nx-short', 'a.b.c']) {
        const err = await openai(host(), key).chat.completions.create({ model: 'gpt-4o', messages: hi }).catch((e) => e)
        expect(err, key).toBeInstanceOf(OpenAI.AuthenticationError)
        expect(err.code).toBe('invalid_api_key')
        expect(err.type).toBe('authentication_error')
        expect(JSON.stringify(err.error)).not.toContain(key)
      }
      const none = await host().json('POST', '/v1/chat/completions', { model: 'gpt-4o', messages: hi })
      expectEnvelope(none, 401, 'invalid_api_key')
      expect(none.headers.get('www-authenticate')).toBe('Bearer')
      const models = await openai(host(), 'wrong').models.list().catch((e) => e)
      expect(models).toBeInstanceOf(OpenAI.AuthenticationError)
      expect(double.requests).toHaveLength(0)
    })

    it('answers bad input with a 4xx in the envelope, never a 500', async () => {
      const post = (body: unknown, headers: Record<string, string> = {}) =>
        host().json('POST', '/v1/chat/completions', body, { ...auth, ...headers })
      expectEnvelope(await post('{"model": "gpt-4o", "messages": ['), 400, 'INVALID_JSON')
      expectEnvelope(await post('model=gpt-4o', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
      const missing = await post({ model: 'gpt-4o' })
      expectEnvelope(missing, 400, 'VALIDATION_FAILED')
      expect(missing.body.error.param).toBe('messages')
      expectEnvelope(await post({ model: 'gpt-4o', messages: [] }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ model: 'gpt-4o', messages: 'hi' }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ messages: hi }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ model: 42, messages: hi }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ model: 'gpt-4o', messages: [{ role: 'wizard', content: 'x' }] }), 400, 'VALIDATION_FAILED')
      const temp = await post({ model: 'gpt-4o', messages: hi, temperature: 'hot' })
      expectEnvelope(temp, 400, 'VALIDATION_FAILED')
      expect(temp.body.error.param).toBe('temperature')
      expectEnvelope(await post({ model: 'gpt-4o', messages: hi, temperature: 3 }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ model: 'gpt-4o', messages: hi, n: 2 }), 400, 'NOT_SUPPORTED')
      expectEnvelope(await post({ model: 'gpt-4o', messages: hi, tools: [{ type: 'function', function: { name: 'bad name!' } }] }), 400, 'VALIDATION_FAILED')
      const badArgs = await post({
        model: 'gpt-4o',
        messages: [
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{not json' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'x' },
        ],
      })
      expectEnvelope(badArgs, 400, 'VALIDATION_FAILED')
      expect(badArgs.body.error.param).toBe('messages[0].tool_calls[0].function.arguments')
      expect(double.requests).toHaveLength(0)
      // Unknown fields are ignored, as OpenAI does.
      const tolerated = await post({ model: 'gpt-4o', messages: hi, store: false, metadata: { a: 'b' }, service_tier: 'auto', modalities: ['text'] })
      expect(tolerated.status).toBe(200)
      expect(tolerated.body.choices[0].message.content).toBeTypeOf('string')
    })

    it('retries a 5xx from Ollama before the first byte, and says what Ollama said when it keeps failing', async () => {
      double.enqueue({ status: 500, errorMessage: 'model runner crashed' }, { text: 'second time lucky' })
      const ok = await openai(host()).chat.completions.create({ model: 'gpt-4o', messages: hi })
      expect(ok.choices[0]!.message.content).toBe('second time lucky')
      expect(double.chats()).toHaveLength(2)
    })

    it('ends a stream with an error the SDK raises when Ollama fails mid-stream, without hanging', async () => {
      double.enqueue({ text: ['one ', 'two ', 'three'], errorAfter: 2, errorMessage: 'CUDA error: out of memory' })
      const stream = await openai(host()).chat.completions.create({ model: 'gpt-4o', messages: hi, stream: true })
      const seen: string[] = []
      const err = await (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '')
      })().catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.APIError)
      expect(String(err.message)).toMatch(/CUDA error: out of memory/)
      expect(seen.join('')).toBe('one two ')
      // On the wire: an error frame and no [DONE].
      double.enqueue({ text: ['a ', 'b'], errorAfter: 1 })
      const sse = await readSse(host(), { model: 'gpt-4o', messages: hi, stream: true })
      expect(sse.data).not.toContain('[DONE]')
      expect(sse.chunks.at(-1)).toMatchObject({ error: { type: 'api_error', code: 'UPSTREAM_ERROR' } })
    })

    it('raises an error when Ollama ends the stream early or drops the connection mid-stream', async () => {
      const client = openai(host())
      for (const script of [{ text: ['a ', 'b'], truncate: true }, { text: ['a ', 'b ', 'c'], destroy: 'mid-stream' as const }]) {
        double.enqueue(script)
        const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: hi, stream: true })
        const err = await (async () => {
          for await (const _ of stream) void _
        })().catch((e) => e)
        expect(err, JSON.stringify(script)).toBeInstanceOf(OpenAI.APIError)
      }
    })

    it('cancels the upstream request when the client goes away mid-stream', async () => {
      double.enqueue({ text: ['first ', 'never'], hang: true })
      const controller = new AbortController()
      const stream = await openai(host()).chat.completions.create({ model: 'gpt-4o', messages: hi, stream: true }, { signal: controller.signal })
      const iterator = stream[Symbol.asyncIterator]()
      expect((await iterator.next()).value?.choices[0]?.delta.role).toBe('assistant')
      expect((await iterator.next()).value?.choices[0]?.delta.content).toBe('first ')
      controller.abort()
      await eventually(() => double.chats()[0]?.clientClosed, 10_000)
    })

    // workerd notices a client that left only when it writes to it, and a whole answer writes nothing
    // until it is ready (streams write keep-alives): docs/GATEWAY.md, "workerd".
    it.skipIf(runtime === 'workerd')('cancels the upstream request when the client goes away before a whole answer', async () => {
      double.enqueue({ delayMs: 30_000 })
      const controller = new AbortController()
      const pending = openai(host()).chat.completions.create({ model: 'gpt-4o', messages: hi }, { signal: controller.signal }).catch((e) => e)
      await eventually(() => double.chats().length === 1)
      controller.abort()
      expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError)
      await eventually(() => double.chats()[0]?.clientClosed, 10_000)
    })

    // Last in this host's suite: after refusing a body unread, workerd drops the keep-alive connection,
    // and the next request on the same pooled socket would fail (see lib/app.ts, drainUnread).
    it('answers a body over the limit with 413 in the envelope', async () => {
      const big = await host().json(
        'POST',
        '/v1/chat/completions',
        { model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] },
        auth,
      )
      expectEnvelope(big, 413, 'BODY_TOO_LARGE')
      expect(double.requests).toHaveLength(0)
    })
  },
  { env: { OLLAMA_BASE_URL: double.url, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)

describeRuntimes(
  'gateway with Ollama down',
  (host) => {
    it('answers 503 on the gateway routes, with a message that says Ollama is down, and Retry-After', async () => {
      const client = openai(host())
      for (const call of [
        () => client.chat.completions.create({ model: 'gpt-4o', messages: hi }),
        () => client.chat.completions.create({ model: 'gpt-4o', messages: hi, stream: true }),
        () => client.embeddings.create({ model: 'nomic-embed-text:latest', input: 'x' }),
        () => client.models.list(),
      ]) {
        const err = await call().catch((e) => e)
        expect(err).toBeInstanceOf(OpenAI.InternalServerError)
        expect(err.status).toBe(503)
        expect(err.code).toBe('UPSTREAM_UNAVAILABLE')
        expect(err.message).toMatch(/Ollama/)
        expect(Number(err.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      }
    })

    it('keeps every other route working', async () => {
      expect((await host().json('GET', '/health/ready')).status).toBe(200)
      const health = await host().json('GET', '/health')
      expect(health.status).toBe(200)
      expect(health.body.checks.ollama.status).toBe('error')
      const keys = await host().json('GET', '/api/v1/gateway/keys', undefined, auth)
      expect(keys.status).toBe(200)
      const aliases = await host().json('GET', '/api/v1/gateway/aliases', undefined, auth)
      expect(aliases.status).toBe(200)
      expect(aliases.body.aliases.map((a: { alias: string }) => a.alias)).toContain('gpt-4o')
    })
  },
  // The harness's default Ollama URL is a closed port.
  { env: { NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)
