/** OpenAI request -> AI SDK language-model call for Ollama, and the shapes sent back. */
import { describe, expect, it } from 'vitest'
import { ApiError } from '../errors.ts'
import { ChatCompletionRequest, completionId, finishReasonOf, randomId, toModelCall, toolCallIdOf, usageOf } from './openai.ts'

const req = (over: Record<string, unknown>) => ChatCompletionRequest.parse({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...over })

describe('toModelCall', () => {
  it('puts sampling options in Ollama options, the request over the alias defaults', () => {
    const call = toModelCall(req({ temperature: 0, max_tokens: 5, stop: 'X' }), { temperature: 0.5, top_p: 0.8, num_ctx: 8192, think: true })
    expect(call.providerOptions!.ollama).toEqual({ options: { temperature: 0, top_p: 0.8, num_predict: 5, stop: ['X'], num_ctx: 8192 }, think: true })
    expect(toModelCall(req({}), {}).providerOptions!.ollama).toEqual({ options: {}, think: false })
  })

  it('maps every message role, tool calls with parsed arguments, and tool results with their tool name', () => {
    const call = toModelCall(
      req({
        messages: [
          { role: 'developer', content: [{ type: 'text', text: 'be ' }, { type: 'text', text: 'brief' }] },
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'w', arguments: '{"c":"x"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
        ],
      }),
      {},
    )
    expect(call.prompt).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'weather?' }] },
      { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 'call_1', toolName: 'w', input: { c: 'x' } }] },
      { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'call_1', toolName: 'w', output: { type: 'text', value: 'sunny' } }] },
    ])
  })

  it('offers tools per tool_choice: none sends none, a named function only that one', () => {
    const tools = [
      { type: 'function', function: { name: 'a' } },
      { type: 'function', function: { name: 'b', parameters: { type: 'object' } } },
    ]
    const names = (call: ReturnType<typeof toModelCall>) => call.tools?.map((t) => t.name)
    expect(names(toModelCall(req({ tools }), {}))).toEqual(['a', 'b'])
    expect(toModelCall(req({ tools }), {}).tools![0]).toEqual({ type: 'function', name: 'a', inputSchema: { type: 'object', properties: {} } })
    expect(toModelCall(req({ tools, tool_choice: 'none' }), {}).tools).toBeUndefined()
    expect(names(toModelCall(req({ tools, tool_choice: 'required' }), {}))).toEqual(['a', 'b'])
    expect(names(toModelCall(req({ tools, tool_choice: { type: 'function', function: { name: 'b' } } }), {}))).toEqual(['b'])
    expect(() => toModelCall(req({ tools, tool_choice: { type: 'function', function: { name: 'c' } } }), {})).toThrow(ApiError)
    expect(() => toModelCall(req({ tools: [tools[0], tools[0]] }), {})).toThrow(/Duplicate tool name/)
  })

  it('asks for JSON (the provider sends format "json") or for the schema', () => {
    expect(toModelCall(req({ response_format: { type: 'json_object' } }), {}).responseFormat).toEqual({ type: 'json' })
    const schema = { type: 'object', properties: { a: { type: 'number' } } }
    const typed = toModelCall(req({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } }), {})
    expect(typed.responseFormat).toEqual({ type: 'json', schema, name: 'x' })
    expect(toModelCall(req({ response_format: { type: 'text' } }), {}).responseFormat).toBeUndefined()
  })

  it('refuses an assistant tool call whose result does not follow, as OpenAI does', () => {
    const call = { role: 'assistant', content: null, tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'w', arguments: '{}' } }] }
    expect(() => toModelCall(req({ messages: [call, { role: 'user', content: 'and?' }] }), {})).toThrow(/call_9/)
    expect(() => toModelCall(req({ messages: [call] }), {})).toThrow(ApiError)
    expect(() => toModelCall(req({ messages: [call, { role: 'tool', tool_call_id: 'call_9', content: 'ok' }] }), {})).not.toThrow()
  })

  it('refuses what Ollama cannot do, naming the parameter', () => {
    const param = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        return (e as ApiError).param
      }
      throw new Error('expected a refusal')
    }
    expect(param(() => toModelCall(req({ n: 3 }), {}))).toBe('n')
    expect(param(() => toModelCall(req({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] }), {}))).toBe(
      'messages[0].content[0].type',
    )
    expect(param(() => toModelCall(req({ messages: [{ role: 'function', name: 'f', content: 'x' }] }), {}))).toBe('messages[0].role')
    expect(param(() => toModelCall(req({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] }), {}))).toBe(
      'messages[0].content[0].image_url.url',
    )
  })

  it('tolerates unknown fields and nulls, as OpenAI does', () => {
    const parsed = ChatCompletionRequest.parse({ model: 'm', messages: [{ role: 'user', content: 'x', extra: 1 }], temperature: null, store: true })
    expect(parsed).not.toHaveProperty('store')
    expect(toModelCall(parsed, {}).providerOptions!.ollama!.options).toEqual({})
  })
})

describe('response helpers', () => {
  it('map finish reasons, usage and tool call ids', () => {
    expect(finishReasonOf('stop', false)).toBe('stop')
    expect(finishReasonOf('stop', true)).toBe('tool_calls')
    expect(finishReasonOf('length', false)).toBe('length')
    expect(finishReasonOf('other', false)).toBe('stop')
    expect(usageOf({ inputTokens: { total: 3 }, outputTokens: { total: 4 } })).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })
    expect(usageOf(undefined)).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 })
    expect(toolCallIdOf('abc')).toBe('call_abc')
    expect(toolCallIdOf('call_x')).toBe('call_x')
    expect(toolCallIdOf(undefined)).toMatch(/^call_[A-Za-z0-9]{24}$/)
  })
})

describe('randomId', () => {
  it('gives ids of the asked length from the alphabet, all different, across refills of its byte pool', () => {
    const ids = new Set<string>()
    // 2,000 ids of 29 characters draw ~60 KiB: the 4 KiB pool is refilled many times.
    for (let i = 0; i < 2_000; i++) {
      const id = completionId()
      expect(id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/)
      ids.add(id)
    }
    expect(ids.size).toBe(2_000)
    expect(randomId(0)).toBe('')
    expect(randomId(300)).toHaveLength(300)
  })

  it('uses every character of the alphabet about equally (no modulo bias)', () => {
    const counts = new Map<string, number>()
    const text = randomId(62 * 2_000)
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1)
    expect(counts.size).toBe(62)
    // Each count is ~2,000 (sd ~44); a biased draw puts the first eight characters at ~2,480.
    for (const n of counts.values()) expect(n).toBeGreaterThan(1_750)
    for (const n of counts.values()) expect(n).toBeLessThan(2_250)
  })
})
