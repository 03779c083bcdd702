/**
 * The OpenAI chat-completions wire format: the request schema (unknown fields tolerated, as OpenAI
 * does), its mapping onto the AI SDK's language-model call (the LanguageModelV3 spec that the Ollama
 * provider implements), and the response and chunk shapes the official SDKs parse.
 */
import type { OllamaProvider } from 'ollama-ai-provider-v2'
import * as z from 'zod'
import { ApiError, badRequest } from '../errors.ts'
import type { AliasParams } from './models-file.ts'

// ---------------------------------------------------------------- request

const TextPart = z.object({ type: z.literal('text'), text: z.string() })
const ImagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string().min(1), detail: z.string().nullish() }),
})
const RefusalPart = z.object({ type: z.literal('refusal'), refusal: z.string() })
/** Any other part type is named in a 400 rather than failing the union with a vague message. */
const OtherPart = z.object({ type: z.string() }).passthrough()

const TextContent = z.union([z.string(), z.array(z.union([TextPart, OtherPart]))])
const UserContent = z.union([z.string(), z.array(z.union([TextPart, ImagePart, OtherPart]))])

const ToolCall = z.object({
  id: z.string().min(1).max(256),
  type: z.literal('function').default('function'),
  function: z.object({ name: z.string().min(1).max(256), arguments: z.string() }),
})

const Message = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: TextContent, name: z.string().nullish() }),
  z.object({ role: z.literal('developer'), content: TextContent, name: z.string().nullish() }),
  z.object({ role: z.literal('user'), content: UserContent, name: z.string().nullish() }),
  z.object({
    role: z.literal('assistant'),
    content: z.union([z.string(), z.array(z.union([TextPart, RefusalPart, OtherPart]))]).nullish(),
    tool_calls: z.array(ToolCall).max(128).nullish(),
    refusal: z.string().nullish(),
    name: z.string().nullish(),
  }),
  z.object({ role: z.literal('tool'), tool_call_id: z.string().min(1).max(256), content: TextContent }),
  z.object({ role: z.literal('function'), name: z.string(), content: z.string().nullish() }),
])

const FunctionName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 of a-z A-Z 0-9 _ -')

const Tool = z.object({
  type: z.literal('function'),
  function: z.object({
    name: FunctionName,
    description: z.string().max(100_000).nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
})

const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: FunctionName }) }),
])

const ResponseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 of a-z A-Z 0-9 _ -'),
      description: z.string().nullish(),
      schema: z.record(z.string(), z.unknown()).nullish(),
      strict: z.boolean().nullish(),
    }),
  }),
])

const Stop = z.union([z.string(), z.array(z.string()).max(16)])

/** POST /v1/chat/completions. Unknown fields are dropped, as OpenAI ignores fields it does not use. */
export const ChatCompletionRequest = z.object({
  model: z.string().min(1).max(256),
  messages: z.array(Message).min(1, 'must contain at least one message').max(10_000),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  stop: Stop.nullish(),
  seed: z.number().int().nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  tools: z.array(Tool).max(128).nullish(),
  tool_choice: ToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: ResponseFormat.nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  user: z.string().max(256).nullish(),
})
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>

// ---------------------------------------------------------------- mapping

/** The AI SDK language model the Ollama provider makes, and the shapes of its calls. */
export type LanguageModel = ReturnType<OllamaProvider['chat']>
export type CallOptions = Parameters<LanguageModel['doStream']>[0]
export type Prompt = CallOptions['prompt']
type PromptMessage = Prompt[number]
export type StreamPart = Awaited<ReturnType<LanguageModel['doStream']>>['stream'] extends ReadableStream<infer P> ? P : never

/** The `options` object Ollama reads (the provider passes it through as `providerOptions.ollama.options`). */
export interface OllamaOptions {
  temperature?: number
  top_p?: number
  top_k?: number
  min_p?: number
  seed?: number
  stop?: string[]
  num_predict?: number
  num_ctx?: number
  repeat_penalty?: number
  repeat_last_n?: number
}

/** What goes to the model besides the abort signal. */
export type ModelCall = Pick<CallOptions, 'prompt' | 'tools' | 'responseFormat' | 'providerOptions'>

const notSupported = (message: string, param: string) => new ApiError(400, 'NOT_SUPPORTED', message, { param })

const textOf = (content: z.infer<typeof TextContent>, param: string): string => {
  if (typeof content === 'string') return content
  return content
    .map((p, j) => {
      if (p.type === 'text') return (p as { text: string }).text
      throw notSupported(`Content parts of type "${p.type}" are not supported here`, `${param}[${j}].type`)
    })
    .join('')
}

const DATA_URL = /^data:(image\/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)$/i

type UserPart = { type: 'text'; text: string } | { type: 'file'; data: string; mediaType: string }

const userContent = (content: z.infer<typeof UserContent>, param: string): UserPart[] => {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  return content.map((p, j): UserPart => {
    if (p.type === 'text') return { type: 'text', text: (p as { text: string }).text }
    if (p.type === 'image_url') {
      const url = (p as z.infer<typeof ImagePart>).image_url.url
      const m = DATA_URL.exec(url)
      // Sovereignty: an image URL would make the gateway fetch from wherever it points. Only inline data.
      if (!m)
        throw notSupported(
          'Images must be inline data: URLs (data:image/...;base64,...); the gateway never fetches from the network',
          `${param}[${j}].image_url.url`,
        )
      return { type: 'file', data: m[2]!.replace(/\s+/g, ''), mediaType: m[1]!.toLowerCase() }
    }
    throw notSupported(`Content parts of type "${p.type}" are not supported`, `${param}[${j}].type`)
  })
}

const parseArguments = (text: string, param: string): unknown => {
  try {
    return JSON.parse(text === '' ? '{}' : text)
  } catch {
    throw badRequest('Tool call arguments must be a JSON string', param)
  }
}

/**
 * OpenAI messages -> the AI SDK prompt. Throws a 400 naming the offending field, also (as OpenAI does)
 * for an assistant tool call whose result does not follow before the next user or system message.
 */
export const toPrompt = (messages: ChatCompletionRequest['messages']): Prompt => {
  const toolNames = new Map<string, string>()
  const pending = new Map<string, number>()
  const checkPending = (i: number) => {
    const [first] = pending
    if (first)
      throw badRequest(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'; '${first[0]}' has none`,
        `messages[${first[1]}].tool_calls`,
      )
    void i
  }
  const prompt = messages.map((m, i): PromptMessage => {
    const param = `messages[${i}].content`
    switch (m.role) {
      case 'system':
      case 'developer':
        checkPending(i)
        return { role: 'system', content: textOf(m.content, param) }
      case 'user':
        checkPending(i)
        return { role: 'user', content: userContent(m.content, param) }
      case 'assistant': {
        checkPending(i)
        const parts: Array<
          { type: 'text'; text: string } | { type: 'tool-call'; toolCallId: string; toolName: string; input: unknown }
        > = []
        const text =
          m.content == null
            ? ''
            : typeof m.content === 'string'
              ? m.content
              : m.content.map((p) => (p.type === 'text' ? (p as { text: string }).text : '')).join('')
        if (text) parts.push({ type: 'text', text })
        ;(m.tool_calls ?? []).forEach((call, j) => {
          toolNames.set(call.id, call.function.name)
          pending.set(call.id, i)
          parts.push({
            type: 'tool-call',
            toolCallId: call.id,
            toolName: call.function.name,
            // Ollama takes arguments as an object; the provider passes `input` through as such.
            input: parseArguments(call.function.arguments, `messages[${i}].tool_calls[${j}].function.arguments`),
          })
        })
        return { role: 'assistant', content: parts }
      }
      case 'tool':
        pending.delete(m.tool_call_id)
        return {
          role: 'tool',
          content: [
            {
              type: 'tool-result',
              toolCallId: m.tool_call_id,
              toolName: toolNames.get(m.tool_call_id) ?? '',
              output: { type: 'text', value: textOf(m.content, param) },
            },
          ],
        }
      case 'function':
        throw notSupported('The "function" role is deprecated; send tool results with role "tool"', `messages[${i}].role`)
    }
  })
  checkPending(messages.length)
  return prompt
}

const EMPTY_OBJECT_SCHEMA = { type: 'object', properties: {} }

/**
 * Maps an OpenAI request onto the AI SDK call for Ollama. Sampling options go to Ollama's `options`
 * (the provider sends the AI SDK's standard settings as top-level fields, which Ollama's /api/chat
 * ignores); an alias's defaults apply where the request is silent.
 */
export const toModelCall = (req: ChatCompletionRequest, defaults: AliasParams): ModelCall => {
  if (req.n != null && req.n > 1) throw notSupported('Only n = 1 is supported: Ollama returns one choice', 'n')

  const options: OllamaOptions = {}
  const temperature = req.temperature ?? defaults.temperature
  if (temperature != null) options.temperature = temperature
  const topP = req.top_p ?? defaults.top_p
  if (topP != null) options.top_p = topP
  const seed = req.seed ?? defaults.seed
  if (seed != null) options.seed = seed
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? defaults.max_tokens
  if (maxTokens != null) options.num_predict = maxTokens
  const stop = req.stop != null ? (typeof req.stop === 'string' ? [req.stop] : req.stop) : defaults.stop
  if (stop && stop.length > 0) options.stop = stop
  if (defaults.top_k != null) options.top_k = defaults.top_k
  if (defaults.min_p != null) options.min_p = defaults.min_p
  if (defaults.num_ctx != null) options.num_ctx = defaults.num_ctx
  if (defaults.repeat_penalty != null) options.repeat_penalty = defaults.repeat_penalty
  if (defaults.repeat_last_n != null) options.repeat_last_n = defaults.repeat_last_n

  const call: ModelCall = {
    prompt: toPrompt(req.messages),
    // JSON values by construction (numbers, strings, string arrays, booleans).
    providerOptions: { ollama: { options: options as Record<string, never>, think: defaults.think ?? false } },
  }

  const tools = req.tools ?? []
  const names = new Set<string>()
  tools.forEach((t, i) => {
    if (names.has(t.function.name)) throw badRequest(`Duplicate tool name "${t.function.name}"`, `tools[${i}].function.name`)
    names.add(t.function.name)
  })
  const choice = req.tool_choice
  // Ollama has no tool_choice: "none" is honoured by sending no tools, a named function by sending only
  // it; "required" cannot be enforced upstream, and the model's answer is returned as it is.
  let offered = tools
  if (choice === 'none') offered = []
  else if (choice != null && typeof choice === 'object') {
    offered = tools.filter((t) => t.function.name === choice.function.name)
    if (offered.length === 0) throw badRequest(`tool_choice names "${choice.function.name}", which is not in tools`, 'tool_choice')
  }
  if (offered.length > 0)
    call.tools = offered.map((t) => ({
      type: 'function' as const,
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      inputSchema: ((t.function.parameters as Record<string, unknown> | null | undefined) ?? EMPTY_OBJECT_SCHEMA) as never,
    }))

  const format = req.response_format
  if (format?.type === 'json_object') call.responseFormat = { type: 'json' }
  else if (format?.type === 'json_schema')
    call.responseFormat = {
      type: 'json',
      schema: ((format.json_schema.schema as Record<string, unknown> | null | undefined) ?? { type: 'object' }) as never,
      name: format.json_schema.name,
      ...(format.json_schema.description ? { description: format.json_schema.description } : {}),
    }
  return call
}

// ---------------------------------------------------------------- response

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter'

/** AI SDK finish reason -> OpenAI's. `error` never reaches here: an error ends the response instead. */
export const finishReasonOf = (reason: string | undefined, hasToolCalls: boolean): FinishReason => {
  if (hasToolCalls || reason === 'tool-calls') return 'tool_calls'
  if (reason === 'length') return 'length'
  if (reason === 'content-filter') return 'content_filter'
  return 'stop'
}

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

/** The AI SDK's usage (Ollama's prompt_eval_count and eval_count) in OpenAI's shape. */
export const usageOf = (u: { inputTokens?: { total?: number }; outputTokens?: { total?: number } } | undefined): Usage => {
  const prompt = u?.inputTokens?.total ?? 0
  const completion = u?.outputTokens?.total ?? 0
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

export interface OpenAIToolCall {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

// Random bytes drawn 4 KiB at a time: one getRandomValues call costs ~14 us on Node 20, more than the
// rest of an id. Filled lazily (workerd forbids randomness at module scope), never exposed.
const pool = new Uint8Array(4096)
let poolAt = pool.length
// The largest multiple of the alphabet's length below 256: bytes from it up are skipped (no modulo bias).
const UNBIASED = 256 - (256 % ID_ALPHABET.length)

/** A random id of `n` alphanumerics (crypto-random, as ids may be shown to other parties). */
export const randomId = (n: number): string => {
  let out = ''
  while (out.length < n) {
    if (poolAt === pool.length) {
      crypto.getRandomValues(pool)
      poolAt = 0
    }
    const b = pool[poolAt++]!
    if (b < UNBIASED) out += ID_ALPHABET[b % ID_ALPHABET.length]
  }
  return out
}

export const completionId = () => `chatcmpl-${randomId(29)}`

/** OpenAI-style tool call id. Ollama sends none, so the provider made one; ours keeps it, prefixed. */
export const toolCallIdOf = (id: string | undefined) => (id && id.startsWith('call_') ? id : `call_${id || randomId(24)}`)

/** An AI SDK tool call (its input is already the JSON text) in OpenAI's shape. */
export const toOpenAIToolCall = (call: { toolCallId?: string; toolName: string; input: unknown }): OpenAIToolCall => ({
  id: toolCallIdOf(call.toolCallId),
  type: 'function',
  function: {
    name: call.toolName,
    arguments: typeof call.input === 'string' ? call.input : JSON.stringify(call.input ?? {}),
  },
})

export interface CompletionMeta {
  id: string
  created: number
  model: string
}

/** The non-streaming `chat.completion` object. */
export const completionResponse = (
  meta: CompletionMeta,
  result: { text: string; reasoning?: string; toolCalls: OpenAIToolCall[]; finishReason: FinishReason; usage: Usage },
) => ({
  id: meta.id,
  object: 'chat.completion' as const,
  created: meta.created,
  model: meta.model,
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant' as const,
        // OpenAI sends null content beside tool calls, and a string otherwise.
        content: result.toolCalls.length > 0 && result.text === '' ? null : result.text,
        refusal: null,
        ...(result.reasoning ? { reasoning_content: result.reasoning } : {}),
        ...(result.toolCalls.length > 0 ? { tool_calls: result.toolCalls } : {}),
      },
      logprobs: null,
      finish_reason: result.finishReason,
    },
  ],
  usage: result.usage,
  system_fingerprint: null,
})

export interface ChunkDelta {
  role?: 'assistant'
  content?: string
  reasoning_content?: string
  tool_calls?: Array<OpenAIToolCall & { index: number }>
}

/** One `chat.completion.chunk`: the same id, created and model on every chunk of a stream. */
export const chunk = (
  meta: CompletionMeta,
  delta: ChunkDelta,
  finishReason: FinishReason | null = null,
  withUsageField = false,
) => ({
  id: meta.id,
  object: 'chat.completion.chunk' as const,
  created: meta.created,
  model: meta.model,
  system_fingerprint: null,
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  // With include_usage OpenAI sends `usage: null` on every chunk but the last.
  ...(withUsageField ? { usage: null } : {}),
})

/** The last chunk of a stream with include_usage: no choices, the usage. */
export const usageChunk = (meta: CompletionMeta, usage: Usage) => ({
  id: meta.id,
  object: 'chat.completion.chunk' as const,
  created: meta.created,
  model: meta.model,
  system_fingerprint: null,
  choices: [],
  usage,
})
