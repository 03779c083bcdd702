/**
 * GET / and GET /assets/:file — the NEXUS Dashboard: a page that talks only to the public API, at this
 * origin or at NEXUS_DASHBOARD_API_BASE. It needs no database or bus, so it is wrapped here rather than
 * by defineFunction (whose per-request services would open a database connection on workerd).
 */
import { Hono } from 'hono'
import { assets, entry } from '../dashboard/dist/assets.gen.ts'
import { assetResponse, contentSecurityPolicy, normalizeApiBase, renderPage, SECURITY_HEADERS } from '../dashboard/serve.ts'
import type { NexusFunction } from '../lib/app.ts'
import { ConfigError, parseEnv } from '../lib/env.ts'
import { ApiError, notFound, renderError, toApiError } from '../lib/errors.ts'
import { httpMetrics } from '../lib/metrics.ts'
import type { Bindings, ExecutionContextLike } from '../lib/services.ts'

const NAME = 'dashboard'
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

type Env = { Bindings: Bindings }

/** The page and its policy per API base (one per deployment, so computed once). */
const pages = new Map<string, { html: string; csp: string }>()
const pageFor = (apiBase: string) => {
  let page = pages.get(apiBase)
  if (!page) pages.set(apiBase, (page = { html: renderPage(entry, apiBase), csp: contentSecurityPolicy(apiBase) }))
  return page
}

const requestIds = new WeakMap<Request, string>()
const requestIdOf = (request: Request) => {
  let id = requestIds.get(request)
  if (!id) {
    const given = request.headers.get('x-request-id')
    id = given && REQUEST_ID.test(given) ? given : crypto.randomUUID()
    requestIds.set(request, id)
  }
  return id
}

const errorResponse = (err: unknown, request: Request) => {
  const apiError =
    err instanceof ConfigError ? new ApiError(500, 'CONFIG_INVALID', 'The server is misconfigured', { cause: err }) : toApiError(err)
  const requestId = requestIdOf(request)
  if (apiError.status >= 500)
    console.error(JSON.stringify({ level: 'error', msg: 'request failed', function: NAME, requestId, code: apiError.code }))
  return renderError(apiError, requestId)
}

const app = new Hono<Env>()
  .get('/', (c) => {
    const { html, csp } = pageFor(normalizeApiBase(parseEnv(c.env).NEXUS_DASHBOARD_API_BASE))
    return c.body(html, 200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': csp,
      // Always revalidated: it names the current assets, which are cached for good.
      'cache-control': 'no-cache',
    })
  })
  .get('/assets/:file', (c) => {
    const name = c.req.param('file')
    const asset = Object.hasOwn(assets, name) ? assets[name] : undefined
    if (!asset) throw notFound(`Dashboard asset "${name}"`)
    return assetResponse(name, asset, c.req.raw)
  })
app.notFound((c) => errorResponse(notFound(`No route for ${c.req.method} ${new URL(c.req.url).pathname}`), c.req.raw))
app.onError((err, c) => errorResponse(err, c.req.raw))

const routes = app.routes.filter((r) => r.method !== 'ALL').map((r) => ({ method: r.method, path: r.path }))

const routeLabel = (pathname: string) => (pathname === '/' ? '/' : pathname.startsWith('/assets/') ? '/assets/:file' : 'unmatched')

const dashboard: NexusFunction = {
  name: NAME,
  routes,
  async fetch(request: Request, env: Bindings, _ctx: ExecutionContextLike) {
    const started = performance.now()
    let res: Response
    try {
      res = await app.fetch(request, env)
    } catch (err) {
      res = errorResponse(err, request)
    }
    res.headers.set('x-request-id', requestIdOf(request))
    // On a long-lived host the shared registry counts the dashboard's requests with everyone else's.
    const metrics = env?.NEXUS_SERVICES?.services.metrics
    if (metrics) {
      const m = httpMetrics(metrics)
      const labels = { function: NAME, method: request.method, route: routeLabel(new URL(request.url).pathname) }
      m.requests.inc({ ...labels, status: res.status })
      m.latency.observe((performance.now() - started) / 1000, labels)
    }
    return res
  },
}

export default dashboard
