/**
 * Turns what a model call threw (the pool's own errors, the AI SDK's, Ollama's answers) into the one
 * ApiError the client sees. Never copies request content into a message.
 */
import { ApiError } from '../errors.ts'
import { EgressDeniedError } from './egress.ts'
import { modelNotFound } from './models.ts'
import { UpstreamStreamError } from './ndjson-guard.ts'

/** The client went away; logged with nginx's 499, never rendered. */
export const CLIENT_CLOSED = 499

// The AI SDK's errors for a prompt the client got wrong (by name: stable across its bundles).
const PROMPT_ERRORS = new Set([
  'AI_InvalidPromptError',
  'AI_InvalidMessageRoleError',
  'AI_MissingToolResultsError',
  'AI_InvalidDataContentError',
  'AI_InvalidArgumentError',
  'AI_UnsupportedFunctionalityError',
])

const causes = function* (err: unknown) {
  const seen = new Set<unknown>()
  let current = err
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current)
    yield current
    current = (current as { cause?: unknown }).cause
  }
}

/** True when the error is (or wraps) an abort: the client disconnected or the request was cancelled. */
export const isAbort = (err: unknown): boolean => {
  for (const e of causes(err))
    if (e instanceof Error || (typeof DOMException !== 'undefined' && e instanceof DOMException))
      if ((e as Error).name === 'AbortError' || (e as Error).name === 'ResponseAborted') return true
  return false
}

const ollamaMessage = (responseBody: unknown): string | undefined => {
  if (typeof responseBody !== 'string') return undefined
  try {
    const parsed = JSON.parse(responseBody) as { error?: unknown }
    if (typeof parsed.error === 'string') return parsed.error.slice(0, 500)
  } catch {
    // not JSON
  }
  return undefined
}

/**
 * Maps an error from a gateway model call to an ApiError. `model` is the name the client asked for,
 * used in `model_not_found`. Unknown errors become a 500 whose cause the wrapper logs.
 */
export const toGatewayError = (err: unknown, model: string): ApiError => {
  for (const e of causes(err)) {
    if (e instanceof ApiError) return e
    if (e instanceof UpstreamStreamError) return new ApiError(502, 'UPSTREAM_ERROR', `Ollama failed while answering: ${e.message}`)
    if (e instanceof EgressDeniedError)
      return new ApiError(502, 'EGRESS_DENIED', 'The gateway refused to call a host that is not a configured Ollama host', { cause: e })
    const name = (e as { name?: unknown })?.name
    if (name === 'AI_APICallError') {
      const status = (e as { statusCode?: number }).statusCode
      const message = ollamaMessage((e as { responseBody?: unknown }).responseBody)
      if (status === 404) return modelNotFound(model)
      if (status !== undefined && status >= 400 && status < 500)
        return new ApiError(400, 'UPSTREAM_REJECTED', `Ollama refused the request: ${message ?? `status ${status}`}`)
      return new ApiError(502, 'UPSTREAM_ERROR', `Ollama failed: ${message ?? (status ? `status ${status}` : 'no answer')}`, { cause: e })
    }
    if (typeof name === 'string' && PROMPT_ERRORS.has(name))
      return new ApiError(400, 'VALIDATION_FAILED', (e as Error).message.split('\n')[0]!.slice(0, 300), { param: 'messages' })
  }
  return new ApiError(500, 'INTERNAL', 'Internal server error', { cause: err })
}
