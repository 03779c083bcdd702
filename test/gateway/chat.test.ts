/**
 * POST /v1/chat/completions through the official openai SDK, as a user calls it: whole and streamed
 * answers, usage, tools (one and several calls, streamed and not), tool results, JSON modes, sampling
 * options, aliases. The Ollama double records what reached it.
 */
import OpenAI from 'openai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { describeRuntimes } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY, openai, readSse } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const double = await startOllamaDouble()
afterAll(() => double.close())
beforeEach(() => double.reset())

const weather: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}
const time: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } },
}

describeRuntimes(
  'gateway chat completions',
  (host) => {
    it('answers a whole completion in OpenAI shape, with Ollama usage counts, for alias gpt-4o served by llama3.2:3b', async () => {
      double.enqueue({ text: ['Bonjour', ' le', ' monde'], promptEvalCount: 21, evalCount: 3 })
      const res = await openai(host()).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello in French' }] })
      expect(res.object).toBe('chat.completion')
      expect(res.id).toMatch(/^chatcmpl-/)
      expect(res.model).toBe('gpt-4o')
      expect(res.choices).toHaveLength(1)
      expect(res.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'Bonjour le monde' })
      expect(res.choices[0]!.finish_reason).toBe('stop')
      expect(res.usage).toEqual({ prompt_tokens: 21, completion_tokens: 3, total_tokens: 24 })
      const [chat] = double.chats()
      expect(chat!.body.model).toBe('llama3.2:3b')
      expect(chat!.body.stream).toBe(false)
      expect(chat!.body.messages).toEqual([{ role: 'user', content: 'Say hello in French' }])
    })

    it('streams chunks with one id and created, the role first, finish_reason in its own chunk, usage last, then [DONE]', async () => {
      double.enqueue({ text: ['One', ' two', ' three'], promptEvalCount: 9, evalCount: 3 })
      const stream = await openai(host()).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'system', content: 'Count.' }, { role: 'user', content: 'Count to three' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      const chunks: OpenAI.ChatCompletionChunk[] = []
      for await (const c of stream) chunks.push(c)
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1)
      expect(new Set(chunks.map((c) => c.created)).size).toBe(1)
      expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'gpt-4o-mini')).toBe(true)
      expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant')
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
      expect(text).toBe('One two three')
      const withFinish = chunks.filter((c) => c.choices[0]?.finish_reason)
      expect(withFinish).toHaveLength(1)
      expect(withFinish[0]!.choices[0]!.finish_reason).toBe('stop')
      expect(withFinish[0]!.choices[0]!.delta).toEqual({})
      const last = chunks.at(-1)!
      expect(last.choices).toEqual([])
      expect(last.usage).toEqual({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 })
      // What the double saw: the system message kept in place, streaming asked for.
      const [chat] = double.chats()
      expect(chat!.body.stream).toBe(true)
      expect(chat!.body.messages).toEqual([
        { role: 'system', content: 'Count.' },
        { role: 'user', content: 'Count to three' },
      ])
    })

    it('serves SSE as text/event-stream, uncached, ending with data: [DONE], and no usage chunk unless asked', async () => {
      const sse = await readSse(host(), { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true })
      expect(sse.status).toBe(200)
      expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/)
      expect(sse.headers.get('cache-control')).toBe('no-cache')
      expect(sse.headers.get('content-encoding')).toBeNull()
      expect(sse.data.at(-1)).toBe('[DONE]')
      expect(sse.chunks.some((c) => 'usage' in c)).toBe(false)
      expect(sse.chunks.at(-1).choices[0].finish_reason).toBe('stop')
    })

    it('returns one tool call with a call_ id and JSON-string arguments, finish_reason tool_calls', async () => {
      double.enqueue({ text: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] })
      const res = await openai(host()).chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        tools: [weather, time],
      })
      const choice = res.choices[0]!
      expect(choice.finish_reason).toBe('tool_calls')
      expect(choice.message.content).toBeNull()
      expect(choice.message.tool_calls).toHaveLength(1)
      const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall
      expect(call.id).toMatch(/^call_[A-Za-z0-9_-]+$/)
      expect(call.type).toBe('function')
      expect(call.function.name).toBe('get_weather')
      expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' })
      // The tools reached Ollama in its format.
      expect(double.chats()[0]!.body.tools).toEqual([
        { type: 'function', function: { name: 'get_weather', description: 'Current weather of a city', parameters: weather.function.parameters } },
        { type: 'function', function: { name: 'get_time', parameters: time.function.parameters } },
      ])
    })

    it('returns several tool calls in one turn, non-streaming', async () => {
      double.enqueue({
        text: [],
        toolCalls: [
          { name: 'get_weather', arguments: { city: 'Paris' } },
          { name: 'get_weather', arguments: { city: 'Rome' } },
          { name: 'get_time', arguments: { zone: 'CET' } },
        ],
      })
      const res = await openai(host()).chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Weather in Paris and Rome, and the time' }],
        tools: [weather, time],
      })
      const calls = res.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[]
      expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_weather', 'get_time'])
      expect(calls.map((c) => JSON.parse(c.function.arguments))).toEqual([{ city: 'Paris' }, { city: 'Rome' }, { zone: 'CET' }])
      expect(new Set(calls.map((c) => c.id)).size).toBe(3)
      expect(res.choices[0]!.finish_reason).toBe('tool_calls')
    })

    it('streams one tool call: a delta with index 0, id, name and whole JSON arguments', async () => {
      double.enqueue({ text: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] })
      const sse = await readSse(host(), {
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        tools: [weather],
        stream: true,
      })
      const deltas = sse.chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
      expect(deltas).toHaveLength(1)
      expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } })
      expect(deltas[0].id).toMatch(/^call_/)
      expect(JSON.parse(deltas[0].function.arguments)).toEqual({ city: 'Oslo' })
      expect(sse.chunks.at(-1).choices[0].finish_reason).toBe('tool_calls')
      expect(sse.data.at(-1)).toBe('[DONE]')
    })

    it('streams several tool calls with indexes 0..n-1, which the SDK assembles', async () => {
      double.enqueue({
        text: [],
        toolCallsSeparately: true,
        toolCalls: [
          { name: 'get_weather', arguments: { city: 'Paris' } },
          { name: 'get_time', arguments: { zone: 'UTC' } },
          { name: 'get_weather', arguments: { city: 'Lima' } },
        ],
      })
      const runner = openai(host()).chat.completions.stream({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'three calls please' }],
        tools: [weather, time],
      })
      const indexes: number[] = []
      runner.on('chunk', (c) => c.choices[0]?.delta.tool_calls?.forEach((t) => indexes.push(t.index)))
      const final = await runner.finalChatCompletion()
      expect(indexes).toEqual([0, 1, 2])
      const calls = final.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[]
      expect(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([
        ['get_weather', { city: 'Paris' }],
        ['get_time', { zone: 'UTC' }],
        ['get_weather', { city: 'Lima' }],
      ])
      expect(calls.every((c) => c.id.startsWith('call_'))).toBe(true)
      expect(final.choices[0]!.finish_reason).toBe('tool_calls')
    })

    it('sends tool results (role tool) back to the model with the assistant tool calls before them', async () => {
      double.enqueue({ text: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] })
      const client = openai(host())
      const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }]
      const first = await client.chat.completions.create({ model: 'gpt-4o', messages, tools: [weather] })
      const assistant = first.choices[0]!.message
      const call = assistant.tool_calls![0]!
      messages.push(assistant, { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 21, "sky": "clear"}' })
      double.enqueue({ text: 'It is 21 °C and clear in Paris.' })
      const second = await client.chat.completions.create({ model: 'gpt-4o', messages, tools: [weather] })
      expect(second.choices[0]!.message.content).toBe('It is 21 °C and clear in Paris.')
      const sent = double.chats()[1]!.body.messages
      expect(sent).toHaveLength(3)
      expect(sent[1]).toMatchObject({ role: 'assistant', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] })
      expect(sent[2]).toMatchObject({ role: 'tool', content: '{"temp_c": 21, "sky": "clear"}', tool_call_id: call.id })
    })

    it('refuses an assistant tool call without its result, as OpenAI does (400)', async () => {
      await expect(
        openai(host()).chat.completions.create({
          model: 'gpt-4o',
          messages: [
            { role: 'user', content: 'x' },
            { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
            { role: 'user', content: 'and?' },
          ],
        }),
      ).rejects.toBeInstanceOf(OpenAI.BadRequestError)
      expect(double.chats()).toHaveLength(0)
    })

    it('honours tool_choice none (no tools sent) and a named function (only that one sent)', async () => {
      const client = openai(host())
      await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], tools: [weather, time], tool_choice: 'none' })
      expect(double.chats()[0]!.body.tools).toBeUndefined()
      await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'x' }],
        tools: [weather, time],
        tool_choice: { type: 'function', function: { name: 'get_time' } },
      })
      expect(double.chats()[1]!.body.tools.map((t: { function: { name: string } }) => t.function.name)).toEqual(['get_time'])
    })

    it('maps response_format json_object to Ollama format "json" and json_schema to the schema', async () => {
      const client = openai(host())
      double.enqueue({ text: '{"ok": true}' })
      const plain = await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'JSON please' }],
        response_format: { type: 'json_object' },
      })
      expect(JSON.parse(plain.choices[0]!.message.content!)).toEqual({ ok: true })
      expect(double.chats()[0]!.body.format).toBe('json')

      const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name', 'age'], additionalProperties: false }
      double.enqueue({ text: ['{"name": "Ada",', ' "age": 36}'] })
      const stream = await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'A person' }],
        response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
        stream: true,
      })
      let text = ''
      for await (const c of stream) text += c.choices[0]?.delta.content ?? ''
      expect(JSON.parse(text)).toEqual({ name: 'Ada', age: 36 })
      expect(double.chats()[1]!.body.format).toEqual(schema)
    })

    it('passes temperature, top_p, max_tokens, stop and seed to Ollama options; max_completion_tokens wins', async () => {
      const client = openai(host())
      await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'x' }],
        temperature: 0.3,
        top_p: 0.9,
        max_tokens: 77,
        stop: ['END', '###'],
        seed: 42,
      })
      expect(double.chats()[0]!.body.options).toEqual({ temperature: 0.3, top_p: 0.9, num_predict: 77, stop: ['END', '###'], seed: 42 })
      await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], max_tokens: 10, max_completion_tokens: 20, stop: 'STOP' })
      expect(double.chats()[1]!.body.options).toEqual({ num_predict: 20, stop: ['STOP'] })
    })

    it('reports finish_reason length when Ollama stops at num_predict', async () => {
      double.enqueue({ text: 'cut short', doneReason: 'length' })
      const res = await openai(host()).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 })
      expect(res.choices[0]!.finish_reason).toBe('length')
    })

    it('serves a local model by its own name, and /chat/completions without /v1', async () => {
      const res = await openai(host(), MASTER_KEY, { baseURL: host().url }).chat.completions.create({
        model: 'qwen2.5:0.5b',
        messages: [{ role: 'user', content: 'hi' }],
      })
      expect(res.model).toBe('qwen2.5:0.5b')
      expect(double.chats()[0]!.body.model).toBe('qwen2.5:0.5b')
    })

    it('answers an unknown model with 404 model_not_found (NotFoundError), streaming or not', async () => {
      const client = openai(host())
      const err = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.NotFoundError)
      expect(err.code).toBe('model_not_found')
      expect(err.type).toBe('invalid_request_error')
      const streamed = await client.chat.completions
        .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }], stream: true })
        .catch((e) => e)
      expect(streamed).toBeInstanceOf(OpenAI.NotFoundError)
      expect(streamed.code).toBe('model_not_found')
    })

    it('sends inline images to Ollama and refuses image URLs it would have to fetch', async () => {
      const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
      const client = openai(host())
      await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }],
      })
      expect(double.chats()[0]!.body.messages[0]).toMatchObject({ role: 'user', content: 'What is this?', images: [png] })
      const err = await client.chat.completions
        .create({
          model: 'gpt-4o',
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://127.0.0.1:9/cat.png' } }] }],
        })
        .catch((e) => e)
      expect(err).toBeInstanceOf(OpenAI.BadRequestError)
      expect(err.param).toBe('messages[0].content[0].image_url.url')
      expect(double.chats()).toHaveLength(1)
    })
  },
  { env: { OLLAMA_BASE_URL: double.url, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)
