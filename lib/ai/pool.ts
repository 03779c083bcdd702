/**
 * The Ollama host pool: least-busy routing over the configured hosts, retries with backoff on
 * connection errors and 5xx before the response starts, and a cooldown for a failing host. The state
 * is plain numbers per host URL, per process (Node) or isolate (workerd), shared by every pool that
 * names the host.
 */
import { ApiError } from '../errors.ts'
import { EgressDeniedError, createEgressFetch, type FetchLike } from './egress.ts'
import { guardNdjson, type UpstreamStreamError } from './ndjson-guard.ts'

/** The base URL the AI SDK provider is given; the pool's fetch maps it onto a real host. `.invalid` never resolves (RFC 2606). */
export const POOL_BASE_URL = 'http://ollama-pool.invalid/api'
const POOL_ORIGIN = new URL(POOL_BASE_URL).origin

export interface PoolOptions {
  /** Attempts per request across hosts (first try included). */
  maxAttempts: number
  /** First backoff before a retry, in ms; doubled each retry, with jitter. */
  backoffMs: number
  /** First cooldown of a failing host, in ms; doubled on each consecutive failure up to `maxCooldownMs`. */
  cooldownMs: number
  maxCooldownMs: number
  now: () => number
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
}

interface HostState {
  url: string
  /** `host:port`, for the usage log. */
  label: string
  inFlight: number
  failures: number
  downUntil: number
}

/** What one logical upstream call did, for the usage log and metrics. */
export interface UpstreamTrace {
  /** `host:port` of the host that answered (the last one tried on failure). */
  host?: string
  attempts: number
  status?: number
  /** performance.now() when a 2xx head arrived, and when the first body bytes of a stream did. */
  answeredAt?: number
  firstByteAt?: number
  /** Set when Ollama failed after the head (error line, lost connection, early end). */
  streamError?: UpstreamStreamError
}

/** A fresh trace for one request. */
export const newTrace = (): UpstreamTrace => ({ attempts: 0 })

const hosts = new Map<string, HostState>()
const stateOf = (url: string): HostState => {
  let s = hosts.get(url)
  if (!s) hosts.set(url, (s = { url, label: new URL(url).host, inFlight: 0, failures: 0, downUntil: 0 }))
  return s
}

const abortError = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError')

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(abortError(signal!))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/** Three attempts, 50 ms first backoff, 1 s first cooldown doubling up to 30 s. */
export const DEFAULT_POOL_OPTIONS: PoolOptions = {
  maxAttempts: 3,
  backoffMs: 50,
  cooldownMs: 1_000,
  maxCooldownMs: 30_000,
  now: Date.now,
  sleep: defaultSleep,
}

/** No host of the pool could be reached: rendered as 503 with a message that says Ollama is down. */
export const ollamaDown = (tried: number, retryAfterSeconds: number) =>
  new ApiError(
    503,
    'UPSTREAM_UNAVAILABLE',
    tried > 0
      ? `Ollama is not reachable (${tried} attempt${tried === 1 ? '' : 's'} failed); the gateway answers 503 until an Ollama host is up`
      : 'Ollama is down: every configured Ollama host failed recently; the gateway answers 503 until one is up',
    { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) } },
  )

const isConnectionError = (err: unknown) => {
  if (err instanceof EgressDeniedError) return false
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return false
  // fetch rejects with a TypeError (undici: "fetch failed"; workerd: "Network connection lost", ...) for
  // refused, reset and unreachable connections alike.
  return err instanceof TypeError || (err instanceof Error && /ECONNREFUSED|ECONNRESET|socket|network|connect/i.test(err.message))
}

/** A pool over some of the configured hosts. Cheap to make: the state lives per host URL. */
export class OllamaPool {
  readonly urls: readonly string[]
  private readonly states: HostState[]
  private readonly egress: FetchLike
  private readonly options: PoolOptions
  private rotation = 0

  /**
   * @param urls the hosts of this pool, each one of `allowed`
   * @param allowed every configured Ollama host (OLLAMA_BASE_URL): the egress guard's list
   */
  constructor(urls: readonly string[], allowed: readonly string[], options: Partial<PoolOptions> = {}, inner?: FetchLike) {
    if (urls.length === 0) throw new Error('an Ollama pool needs at least one host')
    this.urls = urls
    this.states = urls.map(stateOf)
    this.egress = createEgressFetch(allowed, inner)
    this.options = { ...DEFAULT_POOL_OPTIONS, ...options }
  }

  /** The least busy host that is up and not in `avoid` (ties rotate, so idle hosts share the load). */
  private pick(avoid: Set<HostState>): HostState | undefined {
    const now = this.options.now()
    const n = this.states.length
    const start = this.rotation++ % n
    let best: HostState | undefined
    for (let i = 0; i < n; i++) {
      const s = this.states[(start + i) % n]!
      if (s.downUntil > now || avoid.has(s)) continue
      if (!best || s.inFlight < best.inFlight) best = s
    }
    return best
  }

  /** Seconds until the first host of the pool leaves its cooldown. */
  private retryAfterSeconds() {
    const now = this.options.now()
    return Math.max(1, (Math.min(...this.states.map((s) => s.downUntil)) - now) / 1000)
  }

  private fail(s: HostState) {
    s.failures++
    const { cooldownMs, maxCooldownMs, now } = this.options
    s.downUntil = now() + Math.min(maxCooldownMs, cooldownMs * 2 ** (s.failures - 1))
  }

  private succeed(s: HostState) {
    s.failures = 0
    s.downUntil = 0
  }

  /**
   * Sends `path` (e.g. `/api/chat`) to the least busy host that is up, retrying other hosts (or the same
   * one after a backoff) on a connection error or a 5xx answer. Returns the first other answer. A
   * stream's body is watched (see guardNdjson), so the host counts as busy until it is consumed or
   * cancelled. Throws a 503 {@link ollamaDown} when no attempt got an answer.
   */
  async request(path: string, init: RequestInit, trace: UpstreamTrace = newTrace()): Promise<Response> {
    const tried = new Set<HostState>()
    // Hosts that answered 5xx: worth one more try after a backoff when no other host is left.
    const retryable: HostState[] = []
    const signal = init.signal ?? undefined
    let attempts = 0
    let lastAnswer: { status: number; message: string } | undefined
    while (attempts < this.options.maxAttempts) {
      let host = this.pick(tried)
      if (!host) {
        host = retryable.shift()
        if (!host) break
        const base = this.options.backoffMs * 2 ** (attempts - 1)
        await this.options.sleep(base / 2 + Math.random() * base, signal)
      }
      tried.add(host)
      attempts++
      trace.attempts = attempts
      trace.host = host.label
      host.inFlight++
      let res: Response
      try {
        res = await this.egress(host.url + path, init)
      } catch (err) {
        host.inFlight--
        if (signal?.aborted) throw abortError(signal)
        if (!isConnectionError(err)) throw err
        // A refused or reset connection is not retried on the same host: it would only delay the 503.
        this.fail(host)
        lastAnswer = undefined
        continue
      }
      trace.status = res.status
      if (res.status >= 500) {
        host.inFlight--
        lastAnswer = { status: res.status, message: await errorMessageOf(res) }
        this.fail(host)
        retryable.push(host)
        continue
      }
      this.succeed(host)
      if (res.status >= 300 && res.status < 400) {
        host.inFlight--
        await res.body?.cancel().catch(() => undefined)
        throw new ApiError(502, 'UPSTREAM_ERROR', 'Ollama answered with a redirect, which the gateway never follows')
      }
      if (!res.body || res.status !== 200) {
        // An error answer (4xx) is read whole and at once by the caller: the host is not busy with it.
        host.inFlight--
        return res
      }
      trace.answeredAt = performance.now()
      if (!(res.headers.get('content-type') ?? '').includes('ndjson')) {
        // A whole answer (JSON): Ollama sends its head only once the answer is complete, so the host is
        // done with it now; the body is returned untouched (re-wrapping a Response costs ~0.1 ms on Node).
        host.inFlight--
        return res
      }
      let released = false
      const release = () => {
        if (released) return
        released = true
        host.inFlight--
      }
      const body = guardNdjson(res.body, {
        onFirstByte: () => (trace.firstByteAt ??= performance.now()),
        onFailure: (error) => (trace.streamError ??= error),
        onEnd: release,
      })
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers })
    }
    if (lastAnswer) {
      // Every attempt got an answer, an error: say what Ollama said (503 is Ollama's "busy").
      if (lastAnswer.status === 503)
        throw new ApiError(503, 'UPSTREAM_UNAVAILABLE', `Ollama is busy: ${lastAnswer.message}`, {
          headers: { 'retry-after': String(Math.ceil(this.retryAfterSeconds())) },
        })
      throw new ApiError(502, 'UPSTREAM_ERROR', `Ollama answered ${lastAnswer.status}: ${lastAnswer.message}`)
    }
    throw ollamaDown(attempts, this.retryAfterSeconds())
  }

  /**
   * A fetch for the AI SDK provider created with `baseURL: POOL_BASE_URL`: each call goes through
   * {@link request}. A URL outside the pool's base is refused as egress.
   */
  fetchFor(trace: UpstreamTrace): FetchLike {
    return (input, init) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url)
      if (url.origin !== POOL_ORIGIN) return Promise.reject(new EgressDeniedError(url.origin))
      return this.request(url.pathname + url.search, init ?? {}, trace)
    }
  }
}

const MAX_ERROR_BODY = 4_096

/** Ollama's error message from an error answer (`{"error": "..."}`), read whole but bounded. */
export const errorMessageOf = async (res: Response): Promise<string> => {
  let text = ''
  try {
    text = (await res.text()).slice(0, MAX_ERROR_BODY)
    const body = JSON.parse(text) as { error?: unknown }
    if (typeof body.error === 'string') return body.error.slice(0, 500)
  } catch {
    // not JSON: the status says enough
  }
  return text.trim().slice(0, 200) || res.statusText || `status ${res.status}`
}

// Pools by the fetch they call out through (the runtime's: `runtimeFetch`), then by hosts.
const runtimeFetch = {}
let pools = new WeakMap<object, Map<string, OllamaPool>>()

/**
 * The pool over `urls` (cached, so its rotation persists), guarded by `allowed`, calling out through
 * `inner` (a host's own fetch, see Services.upstreamFetch) or the runtime's fetch looked up per call.
 * Pools are plain data and that fetch, so one may serve every request of a process or isolate.
 */
export const poolFor = (urls: readonly string[], allowed: readonly string[], inner?: FetchLike): OllamaPool => {
  const by = inner ?? runtimeFetch
  let cache = pools.get(by)
  if (!cache) pools.set(by, (cache = new Map()))
  const key = `${urls.join(',')}\u0000${allowed.join(',')}`
  let pool = cache.get(key)
  if (!pool) cache.set(key, (pool = new OllamaPool(urls, allowed, {}, inner)))
  return pool
}

/** Test support: forgets every host's busy count and cooldown. */
export const resetPoolState = () => {
  hosts.clear()
  pools = new WeakMap()
}

/** A snapshot of host states, for /health-style reporting and tests. */
export const poolSnapshot = (urls: readonly string[]) =>
  urls.map((u) => {
    const s = stateOf(u)
    return { host: s.label, inFlight: s.inFlight, failures: s.failures, downUntil: s.downUntil }
  })
