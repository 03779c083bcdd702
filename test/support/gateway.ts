/** Helpers for the gateway suites: the master key, an openai client as a user makes one, raw SSE reads. */
import OpenAI from 'openai'
import type { TestHost } from './harness.ts'

/** The master key every gateway test host gets. */
export const MASTER_KEY = 'nexus-test-master-key-0123456789'

/** The functions a gateway suite serves (a subset keeps the workerd host's start short). */
export const GATEWAY_FUNCTIONS = [
  'gateway-chat-completions',
  'gateway-models',
  'gateway-embeddings',
  'gateway-keys',
  'gateway-aliases',
  'gateway-usage',
  'metrics',
  'health',
  'auth-login',
  'auth-users-create',
]

/** The official openai client pointed at a host, as a user would make it. */
export const openai = (host: TestHost, apiKey = MASTER_KEY, options: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) =>
  new OpenAI({ baseURL: `${host.url}/v1`, apiKey, maxRetries: 0, timeout: 20_000, ...options })

export interface SseRead {
  status: number
  headers: Headers
  /** Every `data:` payload, in order, as sent (strings). */
  data: string[]
  /** The payloads parsed as JSON, `[DONE]` left out. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary chunk JSON and assert on it
  chunks: any[]
  raw: string
}

/** POSTs a chat request with fetch and reads the whole SSE response, frame by frame. */
export const readSse = async (host: TestHost, body: unknown, apiKey = MASTER_KEY, path = '/v1/chat/completions'): Promise<SseRead> => {
  const res = await host.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, 'accept-encoding': 'gzip' },
    body: JSON.stringify(body),
  })
  const raw = await res.text()
  const data = raw
    .split('\n\n')
    .map((frame) => frame.trim())
    .filter((frame) => frame && !frame.startsWith(':'))
    .map((frame) => {
      if (!frame.startsWith('data: ')) throw new Error(`not an SSE data frame: ${frame.slice(0, 200)}`)
      return frame.slice(6)
    })
  return { status: res.status, headers: res.headers, data, chunks: data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)), raw }
}

/** Polls `fn` until it returns a truthy value or the time is up. */
export const eventually = async <T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, stepMs = 100): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, stepMs))
  }
}
