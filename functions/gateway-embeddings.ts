/** POST /v1/embeddings (and /embeddings): OpenAI-compatible embeddings through Ollama's /api/embed. */
import { Hono } from 'hono'
import { defineFunction, jsonBody, requestSignal, type AppContext, type AppEnv } from '../lib/app.ts'
import { authenticateCaller } from '../lib/ai/caller.ts'
import { EmbeddingsRequest, embeddings } from '../lib/ai/embeddings.ts'
import type { ExecutionContextLike } from '../lib/services.ts'

const handle = async (c: AppContext) => {
  const startedAt = performance.now()
  const caller = await authenticateCaller(c)
  const body = await jsonBody(c, EmbeddingsRequest)
  const result = await embeddings(
    {
      services: c.var.services,
      bindings: c.env,
      ctx: c.executionCtx as ExecutionContextLike,
      caller,
      signal: requestSignal(c),
      startedAt,
      endpoint: 'embeddings',
    },
    body,
  )
  return c.json(result)
}

const app = new Hono<AppEnv>().post('/v1/embeddings', handle).post('/embeddings', handle)

export default defineFunction('gateway-embeddings', app)
