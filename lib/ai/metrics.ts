/** The gateway's Prometheus metrics, by model alias (the name clients asked for). */
import type { Registry } from '../metrics.ts'

// Time to first token spans model loads (seconds) and warm tokens (milliseconds).
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/** The gateway metrics of a registry (made on first use, shared after). */
export const gatewayMetrics = (registry: Registry) => ({
  requests: registry.counter('gateway_requests_total', 'Gateway requests, by model, endpoint and HTTP status.'),
  errors: registry.counter('gateway_errors_total', 'Gateway requests that failed, by model and error code.'),
  promptTokens: registry.counter('gateway_prompt_tokens_total', 'Prompt tokens Ollama counted, by model.'),
  completionTokens: registry.counter('gateway_completion_tokens_total', 'Completion tokens Ollama counted, by model.'),
  ttft: registry.histogram(
    'gateway_time_to_first_token_seconds',
    'Seconds from request to the first token sent to the client (streams), by model.',
    TTFT_BUCKETS,
  ),
  duration: registry.histogram('gateway_request_duration_seconds', 'Seconds from request to the end of the answer, by model.', DURATION_BUCKETS),
  usageDropped: registry.counter('gateway_usage_dropped_total', 'Usage rows dropped because the database could not take them in time.'),
})

export type GatewayMetrics = ReturnType<typeof gatewayMetrics>
