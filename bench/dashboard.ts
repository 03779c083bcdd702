/**
 * The dashboard's first load in headless Chromium on loopback: bytes transferred (as Chromium's network
 * layer counts them: headers and encoded bodies) and time until the page is usable, cold cache, per
 * runtime. Baseline in the same run: an empty HTML page served by a function on the same host.
 *
 *   npm run bench:dashboard [-- --runs 20 --runtime node]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { FunctionSpec } from '../workers.config.ts'
import { startNodeHost } from '../local-runtime/node/host.ts'
import { startWorkerdHost } from '../local-runtime/workerd/host.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, runtime: { type: 'string', multiple: true } } })
const runs = Math.max(3, Math.min(100, Number(values.runs)))
const runtimes = (values.runtime?.length ? values.runtime : ['node', 'workerd']).filter((r) => r === 'node' || r === 'workerd')
const PASSWORD = 'bench-admin-password'

const emptyPage: FunctionSpec = {
  name: 'bench-empty-page',
  file: 'bench/fixtures/empty-page.ts',
  group: 'dashboard',
  routes: [{ method: 'GET', path: '/bench/empty' }],
  bindings: [],
  description: 'Benchmark baseline: an empty HTML page.',
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!
}
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`
const ms = (n: number) => `${n.toFixed(0)} ms`

interface Load {
  /** Bytes received per resource kind (headers + encoded body). */
  bytes: Record<string, number>
  total: number
  requests: number
  encodings: Set<string>
  /** Navigation start to usable (ms). */
  ready: number
}

const kindOf = (url: string) => {
  const path = new URL(url).pathname
  if (path.endsWith('.js')) return 'js'
  if (path.endsWith('.css')) return 'css'
  if (path.endsWith('.svg')) return 'icon'
  if (path.startsWith('/api/') || path === '/health') return 'api'
  return 'html'
}

/** One navigation in a fresh context (empty cache) or in `page` (warm); counts what the network layer received. */
const load = async (page: Page, url: string, ready: () => Promise<number>): Promise<Load> => {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  const urls = new Map<string, string>()
  const bytes: Record<string, number> = {}
  const encodings = new Set<string>()
  let requests = 0
  cdp.on('Network.responseReceived', (e) => {
    urls.set(e.requestId, e.response.url)
    const enc = Object.entries(e.response.headers).find(([k]) => k.toLowerCase() === 'content-encoding')?.[1]
    if (enc) encodings.add(String(enc))
  })
  cdp.on('Network.loadingFinished', (e) => {
    const u = urls.get(e.requestId)
    if (!u || e.encodedDataLength === 0) return // served from the memory or disk cache
    requests++
    const k = kindOf(u)
    bytes[k] = (bytes[k] ?? 0) + e.encodedDataLength
  })
  await page.goto(url, { waitUntil: 'load' })
  const t = await ready()
  // Let late responses (API calls after sign-in) finish before counting.
  await page.waitForLoadState('networkidle').catch(() => undefined)
  await cdp.detach()
  return { bytes, total: Object.values(bytes).reduce((a, b) => a + b, 0), requests, encodings, ready: t }
}

const dashboardReady = (page: Page) => async () => {
  await page.waitForFunction(() => (window as unknown as { __ready?: number }).__ready !== undefined)
  return page.evaluate(() => (window as unknown as { __ready: number }).__ready)
}
const domReady = (page: Page) => async () =>
  page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).domContentLoadedEventEnd)

const measure = async (browser: Browser, base: string, token: string) => {
  const empty: Load[] = []
  const cold: Load[] = []
  const warm: Load[] = []
  for (let i = 0; i < runs; i++) {
    // Each in a new context: an empty cache and a new renderer, as a first visit.
    const baseline = await browser.newContext()
    const blank = await baseline.newPage()
    empty.push(await load(blank, `${base}/bench/empty`, domReady(blank)))
    await baseline.close()
    const ctx = await browser.newContext()
    const page = await ctx.newPage()
    // The login form takes the focus once the app has run: that moment is "usable".
    await page.addInitScript(() =>
      document.addEventListener('focusin', (e) => {
        if ((e.target as HTMLInputElement).name === 'username') (window as unknown as { __ready: number }).__ready ??= performance.now()
      }),
    )
    cold.push(await load(page, `${base}/`, dashboardReady(page)))
    await page.evaluate(() => delete (window as unknown as { __ready?: number }).__ready)
    warm.push(await load(page, `${base}/`, dashboardReady(page)))
    await ctx.close()
  }
  // Signed in (a token already in the tab): the page, then its first API calls and the socket.
  const signedIn: Load[] = []
  for (let i = 0; i < Math.min(runs, 5); i++) {
    const ctx = await browser.newContext()
    const page = await ctx.newPage()
    await page.addInitScript((t) => sessionStorage.setItem('nexus.token', t), token)
    signedIn.push(
      await load(page, `${base}/`, async () => {
        await page.locator('.live-pill', { hasText: /^Live$/ }).waitFor()
        return page.evaluate(() => performance.now())
      }),
    )
    await ctx.close()
  }
  return { empty, cold, warm, signedIn }
}

const main = async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  const rows: string[] = []
  try {
    for (const runtime of runtimes) {
      const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-dash-'))
      const env: Record<string, string> = {
        HOST: '127.0.0.1',
        PORT: '0',
        NEXUS_DATA_DIR: dataDir,
        NEXUS_ADMIN_PASSWORD: PASSWORD,
        LOG_LEVEL: 'error',
        OLLAMA_BASE_URL: 'http://127.0.0.1:9',
        ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, NEXUS_DB_SCHEMA: `bench_dash_${Date.now()}` } : {}),
      }
      const host = runtime === 'node' ? await startNodeHost({ env, extraFunctions: [emptyPage] }) : await startWorkerdHost({ env, extraFunctions: [emptyPage] })
      try {
        const login = await fetch(`${host.url}/api/v1/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'admin', password: PASSWORD }),
        })
        const { access_token: token } = (await login.json()) as { access_token: string }
        const r = await measure(browser, host.url, token)
        const bytesOf = (l: Load[], k: string) => kib(quantile(l.map((x) => x.bytes[k] ?? 0), 0.5))
        const line = (what: string, l: Load[]) =>
          `| ${runtime} | ${what} | ${quantile(l.map((x) => x.requests), 0.5)} | ${kib(quantile(l.map((x) => x.total), 0.5))} | ${bytesOf(l, 'html')} | ${bytesOf(l, 'js')} | ${bytesOf(l, 'css')} | ${bytesOf(l, 'icon')} | ${bytesOf(l, 'api')} | ${[...new Set(l.flatMap((x) => [...x.encodings]))].join(', ') || 'none'} | ${ms(quantile(l.map((x) => x.ready), 0.5))} / ${ms(quantile(l.map((x) => x.ready), 0.99))} |`
        rows.push(line('empty page (baseline)', r.empty), line('dashboard, first load', r.cold), line('dashboard, reload (cached)', r.warm), line('dashboard, signed in, until live', r.signedIn))
      } finally {
        await host.close()
        rmSync(dataDir, { recursive: true, force: true })
      }
    }
  } finally {
    await browser.close()
  }
  console.log(`\nDashboard first load, headless Chromium on loopback, ${runs} cold loads each (signed in: ${Math.min(runs, 5)}); p50 bytes, ready p50 / p99:\n`)
  console.log('| runtime | load | requests | transferred | HTML | JS | CSS | icon | API | content-encoding | ready p50 / p99 |')
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const r of rows) console.log(r)
}

await main()
