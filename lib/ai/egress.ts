/**
 * The gateway's only way out: a fetch that refuses every URL not under one of the configured Ollama
 * hosts, and never follows a redirect. Defense in depth beyond the start-up check of OLLAMA_BASE_URL.
 */

/** Thrown (never sent anywhere) when code tried to reach a URL outside the configured Ollama hosts. */
export class EgressDeniedError extends Error {
  readonly code = 'EGRESS_DENIED'
  constructor(readonly target: string) {
    super(`egress refused: ${target} is not a configured Ollama host`)
    this.name = 'EgressDeniedError'
  }
}

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

const urlOf = (input: string | URL | Request) =>
  new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url)

interface Base {
  origin: string
  prefix: string
}

const parsed = new Map<string, Base>()
const baseOf = (base: string): Base => {
  let b = parsed.get(base)
  if (!b) {
    const u = new URL(base)
    parsed.set(base, (b = { origin: u.origin, prefix: u.pathname.replace(/\/+$/, '') }))
  }
  return b
}

/**
 * True when `url` is one of `bases` or below it: same scheme, host and port, and the path within the
 * base's path. A base is an OLLAMA_BASE_URL entry as parsed (`http://host:port[/prefix]`, no trailing slash).
 */
export const isAllowedUpstream = (url: URL, bases: readonly string[]): boolean => {
  if (url.username || url.password) return false
  for (const base of bases) {
    const { origin, prefix } = baseOf(base)
    if (origin !== url.origin) continue
    if (prefix === '' || url.pathname === prefix || url.pathname.startsWith(prefix + '/')) return true
  }
  return false
}

/**
 * Wraps `inner` (the runtime's fetch by default, looked up at call time) so that only URLs under
 * `bases` are fetched, with `redirect: 'manual'`: an upstream that answers with a redirect gets its
 * 3xx back, never a request to wherever it points.
 */
export const createEgressFetch = (bases: readonly string[], inner?: FetchLike): FetchLike =>
  async function egressFetch(input, init) {
    const url = urlOf(input)
    if (!isAllowedUpstream(url, bases)) throw new EgressDeniedError(url.origin)
    const f = inner ?? (globalThis.fetch as FetchLike)
    return f(input, { ...init, redirect: 'manual' })
  }
