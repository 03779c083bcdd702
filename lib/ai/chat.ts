/**
 * Chat completions through the AI SDK's language-model interface, which the Ollama provider implements:
 * `doGenerate` for a whole answer, `doStream` for SSE. `doStream` resolves once an Ollama host answered,
 * so an error before that (404, 503, ...) is an ordinary JSON error; an error after it ends the stream
 * with an error frame the SDKs raise. (Why not generateText/streamText: docs/GATEWAY.md, "AI SDK".)
 */
import { ApiError } from '../errors.ts'
import { abortOnDisconnect, finishRequest, prepareUpstream, type GatewayRequest, type Outcome, type Upstream } from './gateway.ts'
import {
  chunk,
  completionId,
  completionResponse,
  finishReasonOf,
  toModelCall,
  toOpenAIToolCall,
  usageChunk,
  usageOf,
  type ChatCompletionRequest,
  type CompletionMeta,
  type ModelCall,
  type StreamPart,
} from './openai.ts'
import { SSE_DONE, SSE_HEADERS, SSE_KEEPALIVE, sseData, sseStream, withinKeepalive } from './stream.ts'
import { CLIENT_CLOSED, isAbort, toGatewayError } from './upstream-errors.ts'

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' }

/** The error fields the client sees, for an error frame. */
const errorBody = (err: ApiError) => ({ error: { message: err.message, type: err.type, code: err.code, param: err.param } })

/** POST /v1/chat/completions once the caller is known and the body valid. */
export const chatCompletion = async (req: GatewayRequest, body: ChatCompletionRequest): Promise<Response> => {
  let upstream: Upstream | undefined
  try {
    upstream = await prepareUpstream(req, body.model)
    const call = toModelCall(body, upstream.model.params)
    const meta: CompletionMeta = { id: completionId(), created: Math.floor(Date.now() / 1000), model: body.model }
    return body.stream ? await streamCompletion(req, body, upstream, call, meta) : await wholeCompletion(req, body, upstream, call, meta)
  } catch (err) {
    const apiError = isAbort(err) ? undefined : toGatewayError(err, body.model)
    // A stream accounts for itself once its response is out; this covers everything that failed before.
    finishRequest(req, {
      model: body.model,
      upstream,
      stream: Boolean(body.stream),
      status: apiError?.status ?? CLIENT_CLOSED,
      errorCode: apiError?.code ?? 'CLIENT_CLOSED',
    })
    throw apiError ?? err
  }
}

const wholeCompletion = async (
  req: GatewayRequest,
  body: ChatCompletionRequest,
  up: Upstream,
  call: ModelCall,
  meta: CompletionMeta,
): Promise<Response> => {
  // The request's own signal aborts when the client goes away (Node); no controller of our own needed.
  const result = await up.provider.chat(up.model.upstream).doGenerate({ ...call, abortSignal: req.signal })
  let text = ''
  let reasoning = ''
  const toolCalls = []
  for (const part of result.content) {
    if (part.type === 'text') text += part.text
    else if (part.type === 'reasoning') reasoning += part.text
    else if (part.type === 'tool-call') toolCalls.push(toOpenAIToolCall(part))
  }
  const usage = usageOf(result.usage)
  finishRequest(req, {
    model: body.model,
    upstream: up,
    stream: false,
    status: 200,
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
  })
  const answer = completionResponse(meta, {
    text,
    reasoning,
    toolCalls,
    finishReason: finishReasonOf(result.finishReason.unified, toolCalls.length > 0),
    usage,
  })
  // A string body, not Response.json(): hosts (@hono/node-server) write a string without a stream.
  return new Response(JSON.stringify(answer), { headers: JSON_HEADERS })
}

const streamCompletion = async (
  req: GatewayRequest,
  body: ChatCompletionRequest,
  up: Upstream,
  call: ModelCall,
  meta: CompletionMeta,
): Promise<Response> => {
  const abort = abortOnDisconnect(req.signal)
  // Resolves when a host answered 2xx; Ollama's errors before that (404, 4xx, every host down) throw here.
  const { stream } = await up.provider.chat(up.model.upstream).doStream({ ...call, abortSignal: abort.signal })
  const parts = stream.getReader()
  const includeUsage = body.stream_options?.include_usage === true
  const outcome: Outcome = { model: body.model, upstream: up, stream: true, status: 200 }
  let started = false
  let accounted = false
  const account = () => {
    if (accounted) return
    accounted = true
    finishRequest(req, outcome)
  }

  async function* frames(): AsyncGenerator<string, void, void> {
    started = true
    let toolIndex = 0
    let finished = false
    const firstToken = () => (outcome.firstTokenAt ??= performance.now())
    // One part -> the frames it becomes.
    const framesOf = (part: StreamPart): string[] => {
      switch (part.type) {
        case 'text-delta':
          if (!part.delta) return []
          firstToken()
          return [sseData(chunk(meta, { content: part.delta }, null, includeUsage))]
        case 'reasoning-delta':
          if (!part.delta) return []
          firstToken()
          return [sseData(chunk(meta, { reasoning_content: part.delta }, null, includeUsage))]
        case 'tool-call': {
          firstToken()
          // Ollama sends whole calls: each becomes one delta with its id, name and complete arguments.
          const delta = { tool_calls: [{ index: toolIndex++, ...toOpenAIToolCall(part) }] }
          return [sseData(chunk(meta, delta, null, includeUsage))]
        }
        case 'finish': {
          // The provider ends normally when Ollama's stream broke off; the pool's guard knows better.
          if (up.trace.streamError) throw up.trace.streamError
          const usage = usageOf(part.usage)
          outcome.promptTokens = usage.prompt_tokens
          outcome.completionTokens = usage.completion_tokens
          const out = [sseData(chunk(meta, {}, finishReasonOf(part.finishReason.unified, toolIndex > 0), includeUsage))]
          if (includeUsage) out.push(sseData(usageChunk(meta, usage)))
          out.push(SSE_DONE)
          finished = true
          return out
        }
        case 'error':
          throw part.error
        default:
          return []
      }
    }
    try {
      // The role delta goes out as soon as the host answered: the client sees the stream is live.
      yield sseData(chunk(meta, { role: 'assistant', content: '' }, null, includeUsage))
      // A read may be abandoned (the client left, an error frame ended the stream): never an unhandled rejection.
      const read = () => {
        const p = parts.read()
        p.catch(() => undefined)
        return p
      }
      let next = read()
      while (!finished) {
        const r = await withinKeepalive(next)
        if (r === undefined) {
          yield SSE_KEEPALIVE
          continue
        }
        if (r.done) break
        // The frames of one part go out in one write (the end of a stream is three frames).
        const out = framesOf(r.value)
        if (out.length > 0) yield out.join('')
        if (!finished) next = read()
      }
      if (!finished) throw up.trace.streamError ?? new ApiError(502, 'UPSTREAM_ERROR', 'The answer ended before it finished')
    } catch (err) {
      if (isAbort(err) || abort.signal.aborted) {
        outcome.status = CLIENT_CLOSED
        outcome.errorCode = 'CLIENT_CLOSED'
        return
      }
      const apiError = toGatewayError(err, body.model)
      if (apiError.code === 'INTERNAL') req.services.log.error('gateway stream failed', { err: apiError.cause ?? err })
      outcome.status = apiError.status
      outcome.errorCode = apiError.code
      // OpenAI's in-stream error: the SDKs raise it from their iteration.
      yield sseData(errorBody(apiError))
    } finally {
      // Whatever ended the answer early also ends the upstream request.
      if (!finished) void parts.cancel().catch(() => undefined)
      account()
    }
  }

  const onCancel = (reason: unknown) => {
    abort.abort(reason)
    // Cancelled before the first frame was pulled: the generator's body (and its finally) never runs.
    if (!started) {
      outcome.status = CLIENT_CLOSED
      outcome.errorCode = 'CLIENT_CLOSED'
      void parts.cancel(reason).catch(() => undefined)
      account()
    }
  }
  return new Response(sseStream(frames(), onCancel), { status: 200, headers: SSE_HEADERS })
}
