/**
 * What every gateway request shares: resolving and authorizing the model, the key's limits, the AI SDK
 * provider bound to the host pool, and the one place a finished request is accounted for (usage row,
 * metrics, tokens charged to the key).
 */
import { createOllama } from 'ollama-ai-provider-v2'
import type { Bindings, ExecutionContextLike, Services } from '../services.ts'
import { assertModelAllowed, type Caller } from './caller.ts'
import { chargeTokens, checkLimits } from './limits.ts'
import { gatewayMetrics } from './metrics.ts'
import { resolveModel, type ResolvedModel } from './models.ts'
import { POOL_BASE_URL, newTrace, poolFor, type UpstreamTrace } from './pool.ts'
import { knownLocalModel } from './tags.ts'
import { recordUsage } from './usage.ts'

export interface GatewayRequest {
  services: Services
  bindings: Bindings | undefined
  ctx: ExecutionContextLike
  caller: Caller
  /** Aborted when the client goes away. */
  signal: AbortSignal
  /** performance.now() when the request arrived. */
  startedAt: number
  endpoint: 'chat' | 'embeddings'
}

/** A request's route to Ollama: the resolved model, its pool's provider, and the trace of the call. */
export interface Upstream {
  model: ResolvedModel
  trace: UpstreamTrace
  provider: ReturnType<typeof createOllama>
}

/**
 * Resolves the model, checks the caller may use it and is within its limits, and binds a provider to
 * the model's host pool. Throws the ApiError to render (404, 403, 429).
 */
export const prepareUpstream = async (req: GatewayRequest, modelName: string): Promise<Upstream> => {
  const model = await resolveModel(req.services, req.bindings, modelName)
  assertModelAllowed(req.caller, model.name)
  if (req.caller.kind === 'key') await checkLimits(req.services.bus, req.caller.key)
  const trace = newTrace()
  const pool = poolFor(model.hosts, req.services.config.OLLAMA_BASE_URL, req.services.upstreamFetch)
  // The provider never sees a real host: its fetch is the pool's, which picks one and guards egress.
  const provider = createOllama({ baseURL: POOL_BASE_URL, fetch: pool.fetchFor(trace) })
  return { model, trace, provider }
}

export interface Outcome {
  /** The model name the client asked for. */
  model: string
  upstream?: Upstream
  stream: boolean
  status: number
  errorCode?: string
  promptTokens?: number
  completionTokens?: number
  /** performance.now() of the first token sent (streams). */
  firstTokenAt?: number
}

/**
 * Accounts for a finished request, off the hot path: a usage row (batched), the metrics, and the
 * tokens charged to the key's minute window and budget.
 */
export const finishRequest = (req: GatewayRequest, o: Outcome): void => {
  const { services } = req
  const elapsed = performance.now() - req.startedAt
  const ttft = o.firstTokenAt !== undefined ? o.firstTokenAt - req.startedAt : undefined
  const prompt = o.promptTokens ?? 0
  const completion = o.completionTokens ?? 0
  // Metric labels stay bounded: a name becomes a label only when it is an alias or a model Ollama has.
  const known =
    o.upstream !== undefined &&
    (o.upstream.model.source !== 'ollama' || o.upstream.trace.answeredAt !== undefined || knownLocalModel(services, o.model))
  const label = known ? o.model : '_unknown'
  const m = gatewayMetrics(services.metrics)
  m.requests.inc({ model: label, endpoint: req.endpoint, status: o.status })
  if (o.status >= 400) m.errors.inc({ model: label, code: o.errorCode ?? String(o.status) })
  if (prompt) m.promptTokens.inc({ model: label }, prompt)
  if (completion) m.completionTokens.inc({ model: label }, completion)
  if (ttft !== undefined) m.ttft.observe(ttft / 1000, { model: label })
  m.duration.observe(elapsed / 1000, { model: label })

  const { caller } = req
  recordUsage(services, req.ctx, {
    key_id: caller.kind === 'key' ? caller.key.id : null,
    subject: caller.subject,
    model: o.model.slice(0, 200),
    upstream_model: o.upstream?.model.upstream ?? null,
    host: o.upstream?.trace.host ?? null,
    stream: o.stream,
    prompt_tokens: prompt,
    completion_tokens: completion,
    latency_ms: Math.round(elapsed),
    ttft_ms: ttft !== undefined ? Math.round(ttft) : null,
    status: o.status,
    error_code: o.errorCode ?? null,
    created_at: new Date(),
  })
  if (caller.kind === 'key' && prompt + completion > 0)
    req.ctx.waitUntil(
      chargeTokens(services.bus, caller.key, prompt + completion).catch((err) =>
        services.log.warn('could not charge tokens to a gateway key', { err }),
      ),
    )
}

/** Links a client's abort signal to a controller the model call listens to. */
export const abortOnDisconnect = (signal: AbortSignal): AbortController => {
  const controller = new AbortController()
  if (signal.aborted) controller.abort(signal.reason)
  else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true })
  return controller
}
