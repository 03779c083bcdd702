/** Which upstream hosts the gateway may call: loopback, private ranges and cluster-local names only. */

const ipv4 = (host: string): number[] | undefined => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  if (!m) return undefined
  const parts = m.slice(1).map(Number)
  return parts.every((p) => p >= 0 && p <= 255) ? parts : undefined
}

const isLocalIpv4 = ([a, b]: number[]): boolean =>
  a === 127 || // loopback
  a === 10 || // RFC 1918
  (a === 172 && b! >= 16 && b! <= 31) ||
  (a === 192 && b === 168)
// Link-local 169.254/16 is deliberately refused: it is where cloud metadata services live.

const isLocalIpv6 = (host: string): boolean => {
  const h = host.toLowerCase()
  if (h === '::1') return true
  if (/^f[cd][0-9a-f]{2}:/.test(h)) return true // fc00::/7 unique local
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)
  if (mapped) {
    const v4 = ipv4(mapped[1]!)
    return v4 !== undefined && isLocalIpv4(v4)
  }
  return false
}

const LABEL = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/

/**
 * True when `hostname` is loopback, a private-range address, or a name that only resolves inside
 * the local network or cluster: `localhost`, a single label (a compose or k8s service name),
 * `*.localhost`, `*.local`, `*.svc`, `*.cluster.local`.
 */
export const isSovereignHost = (hostname: string): boolean => {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (host.includes(':')) return isLocalIpv6(host)
  const v4 = ipv4(host)
  if (v4) return isLocalIpv4(v4)
  // Numeric forms that resolvers read as addresses (2130706433, 0x08080808, 010.0.0.1) are never trusted.
  if (host.split('.').some((l) => /^(0x[0-9a-f]*|\d+)$/i.test(l)) && !v4) return false
  const labels = host.replace(/\.$/, '').split('.')
  if (!labels.every((l) => LABEL.test(l))) return false
  if (labels.length === 1) return true
  const tail = labels.slice(-2).join('.')
  const last = labels[labels.length - 1]
  return last === 'localhost' || last === 'local' || last === 'svc' || tail === 'cluster.local'
}

/** Parses `OLLAMA_BASE_URL` (one URL or a comma-separated pool) and refuses anything not sovereign. */
export const parseUpstreams = (value: string): { urls: string[]; error?: string } => {
  const urls: string[] = []
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      return { urls, error: `"${raw}" is not a URL` }
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { urls, error: `"${raw}" must be http or https` }
    if (url.username || url.password) return { urls, error: `"${url.host}" must not carry credentials in the URL` }
    if (!isSovereignHost(url.hostname))
      return {
        urls,
        error: `upstream "${url.hostname}" is not loopback, private-range or cluster-local; NEXUS only calls local Ollama hosts`,
      }
    urls.push(url.origin + url.pathname.replace(/\/+$/, ''))
  }
  if (urls.length === 0) return { urls, error: 'no upstream URL given' }
  return { urls }
}
