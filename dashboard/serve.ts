/**
 * Serving the dashboard, runtime-neutral: the HTML page (no inline script; the API base as a <meta>),
 * its Content-Security-Policy, and the embedded assets with their pre-compressed bodies and cache headers.
 */

/** One asset as dashboard/build.ts embeds it: the text, and its gzip and brotli forms in base64. */
export interface EmbeddedAsset {
  type: string
  etag: string
  text: string
  gzip: string
  br: string
}

export interface Entry {
  js: string
  css: string
  icon: string
}

/** Headers every dashboard response carries. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
}

const escapeAttr = (v: string) =>
  v.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!)

/** The API base as the page uses it: origin and path, no trailing slash; '' for the page's own origin. */
export const normalizeApiBase = (base: string | undefined): string => {
  if (!base) return ''
  const u = new URL(base)
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`
}

/**
 * The page's policy: scripts, styles and everything else from this origin only (no inline script or
 * style, no eval), no plugins, no framing, no <base>; connections to this origin and to the API base
 * (and its WebSocket scheme); Trusted Types with no policy, so no string ever reaches an HTML sink.
 */
export const contentSecurityPolicy = (apiBase: string): string => {
  const connect = ["'self'"]
  if (apiBase) {
    const u = new URL(apiBase)
    connect.push(u.origin, `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}`)
  }
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect.join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ')
}

/** The HTML shell. Asset paths are relative, so the page also works below a path prefix. */
export const renderPage = (entry: Entry, apiBase: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="nexus-api-base" content="${escapeAttr(apiBase)}">
<title>NEXUS Dashboard</title>
<link rel="icon" type="image/svg+xml" href="${escapeAttr(entry.icon)}">
<link rel="stylesheet" href="${escapeAttr(entry.css)}">
<script type="module" src="${escapeAttr(entry.js)}"></script>
</head>
<body>
<div id="app" class="boot">Loading the dashboard…</div>
<div id="announcer" class="sr-only" aria-live="polite"></div>
<noscript><p class="noscript">The NEXUS Dashboard needs JavaScript.</p></noscript>
</body>
</html>
`

const decoded = new Map<string, Uint8Array<ArrayBuffer>>()
const bytesOf = (key: string, base64: string) => {
  let bytes = decoded.get(key)
  if (!bytes) {
    const bin = atob(base64)
    bytes = new Uint8Array(bin.length)
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i)
    decoded.set(key, bytes)
  }
  return bytes
}

/** The encodings a request accepts (q=0 refuses one). */
const accepted = (header: string | null): Set<string> => {
  const out = new Set<string>()
  for (const part of (header ?? '').toLowerCase().split(',')) {
    const [name, ...params] = part.trim().split(';')
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    if (name && !(q && Number(q.slice(2)) === 0)) out.add(name.trim())
  }
  return out
}

/**
 * An asset response: brotli or gzip when the client takes it (pre-compressed at build time), an ETag,
 * and a year of immutable caching (the name changes with the content).
 */
export const assetResponse = (name: string, asset: EmbeddedAsset, request: Request): Response => {
  const headers = new Headers({
    ...SECURITY_HEADERS,
    'content-type': asset.type,
    'cache-control': 'public, max-age=31536000, immutable',
    etag: asset.etag,
    vary: 'accept-encoding',
    // An SVG opened on its own is a document: it may run nothing.
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  })
  if (request.headers.get('if-none-match')?.split(',').some((t) => t.trim().replace(/^W\//, '') === asset.etag))
    return new Response(null, { status: 304, headers })
  const ok = accepted(request.headers.get('accept-encoding'))
  let body: Uint8Array<ArrayBuffer>
  if (ok.has('br')) {
    body = bytesOf(`${name}:br`, asset.br)
    headers.set('content-encoding', 'br')
  } else if (ok.has('gzip')) {
    body = bytesOf(`${name}:gzip`, asset.gzip)
    headers.set('content-encoding', 'gzip')
  } else {
    body = new TextEncoder().encode(asset.text)
  }
  headers.set('content-length', String(body.byteLength))
  // `encodeBody: 'manual'`: workerd sends the bytes as they are (already encoded); Node ignores it.
  return new Response(body, { status: 200, headers, encodeBody: 'manual' } as ResponseInit)
}
