/** Embeddings through the AI SDK's embedding-model interface of the Ollama provider (`/api/embed`), in OpenAI's shape. */
import * as z from 'zod'
import { ApiError } from '../errors.ts'
import { finishRequest, prepareUpstream, type GatewayRequest, type Upstream } from './gateway.ts'
import { CLIENT_CLOSED, isAbort, toGatewayError } from './upstream-errors.ts'

const Text = z.string().min(1, 'must not be empty')

/** POST /v1/embeddings. Token-id input (arrays of numbers) is refused: Ollama embeds text only. */
export const EmbeddingsRequest = z.object({
  model: z.string().min(1).max(256),
  input: z.union([Text, z.array(Text).min(1, 'must not be empty').max(2048), z.array(z.number()).min(1), z.array(z.array(z.number())).min(1)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).max(65_536).nullish(),
  user: z.string().max(256).nullish(),
})
export type EmbeddingsRequest = z.infer<typeof EmbeddingsRequest>

/** Little-endian float32 bytes in base64: what OpenAI sends for `encoding_format: "base64"`. */
export const toBase64Floats = (vector: number[]): string => {
  const bytes = new Uint8Array(new Float32Array(vector).buffer)
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}

/** Embeds the input and returns OpenAI's `list` object. */
export const embeddings = async (req: GatewayRequest, body: EmbeddingsRequest) => {
  const values = typeof body.input === 'string' ? [body.input] : body.input
  if (values.some((v) => typeof v !== 'string'))
    throw new ApiError(400, 'NOT_SUPPORTED', 'Token arrays are not supported: send the input as text', { param: 'input' })
  const texts = values as string[]
  let upstream: Upstream | undefined
  try {
    upstream = await prepareUpstream(req, body.model)
    // One call: the input is capped at 2048 texts, the provider's batch size.
    const result = await upstream.provider.embedding(upstream.model.upstream).doEmbed({
      values: texts,
      abortSignal: req.signal,
      ...(body.dimensions ? { providerOptions: { ollama: { dimensions: body.dimensions } } } : {}),
    })
    const tokens = result.usage?.tokens ?? 0
    finishRequest(req, { model: body.model, upstream, stream: false, status: 200, promptTokens: tokens })
    const base64 = body.encoding_format === 'base64'
    return {
      object: 'list' as const,
      data: result.embeddings.map((embedding, index) => ({
        object: 'embedding' as const,
        index,
        embedding: base64 ? toBase64Floats(embedding) : embedding,
      })),
      model: body.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    }
  } catch (err) {
    const apiError = isAbort(err) ? undefined : toGatewayError(err, body.model)
    finishRequest(req, {
      model: body.model,
      upstream,
      stream: false,
      status: apiError?.status ?? CLIENT_CLOSED,
      errorCode: apiError?.code ?? 'CLIENT_CLOSED',
    })
    throw apiError ?? err
  }
}
