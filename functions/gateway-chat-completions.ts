/** POST /v1/chat/completions (and /chat/completions): OpenAI-compatible chat over the local Ollama pool. */
import { Hono } from 'hono'
import { defineFunction, jsonBody, requestSignal, type AppContext, type AppEnv } from '../lib/app.ts'
import { authenticateCaller } from '../lib/ai/caller.ts'
import { chatCompletion } from '../lib/ai/chat.ts'
import { ChatCompletionRequest } from '../lib/ai/openai.ts'
import type { ExecutionContextLike } from '../lib/services.ts'

const handle = async (c: AppContext) => {
  const startedAt = performance.now()
  // As OpenAI: the key is checked before the body is read.
  const caller = await authenticateCaller(c)
  const body = await jsonBody(c, ChatCompletionRequest)
  return chatCompletion(
    {
      services: c.var.services,
      bindings: c.env,
      ctx: c.executionCtx as ExecutionContextLike,
      caller,
      signal: requestSignal(c),
      startedAt,
      endpoint: 'chat',
    },
    body,
  )
}

const app = new Hono<AppEnv>().post('/v1/chat/completions', handle).post('/chat/completions', handle)

export default defineFunction('gateway-chat-completions', app)
