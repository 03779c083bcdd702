/** The gateway as the AI SDK's OpenAI-compatible provider sees it: text, usage and tool calls, streamed and not. */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { generateText, jsonSchema, streamText, tool } from 'ai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { describeRuntimes, type TestHost } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const double = await startOllamaDouble()
afterAll(() => double.close())
beforeEach(() => double.reset())

const providerFor = (host: TestHost) =>
  createOpenAICompatible({ name: 'nexus', baseURL: `${host.url}/v1`, apiKey: MASTER_KEY, includeUsage: true })

const tools = {
  get_weather: tool({ description: 'Weather', inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }) }),
}

describeRuntimes(
  'gateway through the AI SDK OpenAI-compatible provider',
  (host) => {
    it('streams text with usage', async () => {
      double.enqueue({ text: ['Hello', ' there'], promptEvalCount: 11, evalCount: 2 })
      const result = streamText({ model: providerFor(host())('gpt-4o'), prompt: 'hi', maxRetries: 0 })
      expect(await result.text).toBe('Hello there')
      expect(await result.finishReason).toBe('stop')
      const usage = await result.usage
      expect(usage.inputTokens).toBe(11)
      expect(usage.outputTokens).toBe(2)
    })

    it('streams several tool calls', async () => {
      double.enqueue({ text: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }, { name: 'get_weather', arguments: { city: 'Bern' } }] })
      const result = streamText({ model: providerFor(host())('gpt-4o'), prompt: 'weather', tools, maxRetries: 0 })
      const calls = await result.toolCalls
      expect(calls.map((c) => c.input)).toEqual([{ city: 'Paris' }, { city: 'Bern' }])
      expect(calls.every((c) => c.toolCallId.startsWith('call_'))).toBe(true)
      expect(await result.finishReason).toBe('tool-calls')
    })

    it('generates text and tool calls without streaming', async () => {
      double.enqueue({ text: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Rome' } }] })
      const result = await generateText({ model: providerFor(host())('gpt-4o'), prompt: 'weather', tools, maxRetries: 0 })
      expect(result.toolCalls.map((c) => [c.toolName, c.input])).toEqual([['get_weather', { city: 'Rome' }]])
      expect(result.usage.inputTokens).toBeGreaterThan(0)
    })

    it('surfaces an Ollama failure mid-stream as an error', async () => {
      double.enqueue({ text: ['a ', 'b'], errorAfter: 1, errorMessage: 'model crashed' })
      const errors: unknown[] = []
      const result = streamText({ model: providerFor(host())('gpt-4o'), prompt: 'x', maxRetries: 0, onError: ({ error }) => void errors.push(error) })
      await result.consumeStream()
      expect(errors.length).toBeGreaterThan(0)
      expect(String((errors[0] as Error).message ?? errors[0])).toMatch(/model crashed/)
    })
  },
  { env: { OLLAMA_BASE_URL: double.url, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)
