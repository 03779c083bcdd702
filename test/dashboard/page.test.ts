/**
 * The dashboard function over HTTP, on each runtime: the page (no inline script, a strict CSP, no other
 * origin), its assets (pre-compressed, cached for good, revalidated by ETag), the API base setting, and
 * that it needs no database to serve.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import dashboard from '../../functions/dashboard.ts'
import { ConfigError, parseEnv } from '../../lib/env.ts'
import { describeRuntimes, expectEnvelope, startTestHost, type TestHost } from '../support/harness.ts'

/** A GET that shows the bytes as sent (fetch would decompress them). */
const rawGet = (url: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })

const assetPaths = (html: string) => [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]!)

const checkPage = async (host: TestHost) => {
  const res = await host.fetch('/')
  const html = await res.text()
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
  expect(res.headers.get('cache-control')).toBe('no-cache')
  expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  expect(res.headers.get('referrer-policy')).toBe('no-referrer')
  expect(res.headers.get('x-request-id')).toBeTruthy()
  return { res, html, csp: res.headers.get('content-security-policy') ?? '' }
}

describeRuntimes('dashboard: the page and its assets', (host, runtime) => {
  it('serves the page with a policy that forbids inline script, and nothing from another origin', async () => {
    const { html, csp } = await checkPage(host())
    const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(' ')]))
    expect(directives).toMatchObject({
      'default-src': "'self'",
      'script-src': "'self'",
      'style-src': "'self'",
      'connect-src': "'self'",
      'object-src': "'none'",
      'base-uri': "'none'",
      'frame-ancestors': "'none'",
      'form-action': "'self'",
      'require-trusted-types-for': "'script'",
    })
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/)
    // Every script is a file of this origin; no inline script, no handler attribute, no style attribute.
    const scripts = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)]
    expect(scripts).toHaveLength(1)
    expect(scripts[0]![0]).toMatch(/src="assets\/app-[0-9a-f]{12}\.js"/)
    expect(scripts[0]![1]).toBe('')
    expect(html).not.toMatch(/\son[a-z]+\s*=|\sstyle\s*=/i)
    expect(html).not.toMatch(/https?:\/\//)
    expect(html).toContain('<meta name="nexus-api-base" content="">')
    expect(assetPaths(html)).toHaveLength(3)
  })

  it('serves each asset compressed as asked (brotli, gzip or none), with its type, an ETag and a year of immutable caching', async () => {
    const { html } = await checkPage(host())
    for (const path of assetPaths(html)) {
      const url = `${host().url}/${path}`
      const plain = await rawGet(url, { 'accept-encoding': 'identity' })
      expect(plain.status, path).toBe(200)
      // No Accept-Encoding at all is identity too. (Not checked on workerd: miniflare, like Cloudflare's
      // edge, always asks the worker for "br, gzip", and passes the answer on as is to such a client.)
      if (runtime === 'node') expect((await rawGet(url)).body.equals(plain.body)).toBe(true)
      expect(plain.headers['content-encoding']).toBeUndefined()
      expect(plain.headers['content-type']).toMatch(path.endsWith('.js') ? /^text\/javascript/ : path.endsWith('.css') ? /^text\/css/ : /^image\/svg\+xml/)
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable')
      expect(plain.headers['x-content-type-options']).toBe('nosniff')
      expect(plain.headers.vary).toMatch(/accept-encoding/i)
      const br = await rawGet(url, { 'accept-encoding': 'br' })
      expect(br.headers['content-encoding']).toBe('br')
      expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true)
      const gz = await rawGet(url, { 'accept-encoding': 'gzip' })
      expect(gz.headers['content-encoding']).toBe('gzip')
      expect(gunzipSync(gz.body).equals(plain.body)).toBe(true)
      if (path.endsWith('.js')) expect(br.body.length).toBeLessThan(plain.body.length / 2)
      const etag = plain.headers.etag as string
      expect(etag).toMatch(/^"[0-9a-f]{12}"$/)
      const again = await rawGet(url, { 'if-none-match': etag })
      expect(again.status).toBe(304)
      expect(again.body.length).toBe(0)
    }
  })

  it('ships a client that never writes HTML: no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval', async () => {
    const { html } = await checkPage(host())
    const js = await (await host().fetch(`/${assetPaths(html).find((p) => p.endsWith('.js'))}`)).text()
    expect(js.length).toBeGreaterThan(10_000)
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(/)
    expect(js).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/)
  })

  it('answers an unknown asset with 404 in the envelope, and HEAD / without a body', async () => {
    expectEnvelope(await host().json('GET', '/assets/app-000000000000.js'), 404, 'NOT_FOUND')
    expectEnvelope(await host().json('GET', '/assets/constructor'), 404, 'NOT_FOUND')
    const head = await host().fetch('/', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
  })
  // The dashboard alone: a workerd host with every function takes long to start on a busy machine.
}, { groups: ['dashboard'] })

describeRuntimes(
  'dashboard: deployed alone, with its API elsewhere (NEXUS_DASHBOARD_API_BASE)',
  (host) => {
    it('names the API base in the page and lets the page connect there (and to its WebSocket), nowhere else', async () => {
      const { html, csp } = await checkPage(host())
      expect(html).toContain('<meta name="nexus-api-base" content="https://api.example.test/nexus">')
      expect(csp).toContain("connect-src 'self' https://api.example.test wss://api.example.test;")
      expect(csp).toContain("script-src 'self';")
      // Only the dashboard is served here.
      expectEnvelope(await host().json('GET', '/api/v1/agents'), 404, 'NOT_FOUND')
    })
  },
  { groups: ['dashboard'], env: { NEXUS_DASHBOARD_API_BASE: 'https://api.example.test/nexus/' } },
)

describe('dashboard: configuration and needs', () => {
  it('refuses an API base that is not a plain http(s) URL, naming the variable', async () => {
    for (const bad of ['javascript:alert(1)', 'ftp://x.test', 'not a url', 'https://x.test/?a=1', 'https://user:pw@x.test'])
      expect(() => parseEnv({ NEXUS_DASHBOARD_API_BASE: bad }), bad).toThrow(/^NEXUS_DASHBOARD_API_BASE: /)
    const dataDir = mkdtempSync(join(tmpdir(), 'nexus-dash-'))
    try {
      await expect(
        startTestHost('node', { groups: ['dashboard'], env: { NEXUS_DATA_DIR: dataDir, NEXUS_DASHBOARD_API_BASE: 'javascript:alert(1)' } }),
      ).rejects.toBeInstanceOf(ConfigError)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('serves without a database, a bus or any host service (bindings: none)', async () => {
    const ctx = { waitUntil: () => undefined }
    const page = await dashboard.fetch(new Request('http://dash.test/'), {}, ctx)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<div id="app"')
    const missing = await dashboard.fetch(new Request('http://dash.test/nope'), {}, ctx)
    expect(missing.status).toBe(404)
    expect((await missing.json()).error.code).toBe('NOT_FOUND')
  })
})
