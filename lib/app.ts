/**
 * The function wrapper: turns a Hono app into a deployable `{ fetch }` with the shared middleware
 * (request id, services, CORS, body limit, metrics, logging) and the one error renderer.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type * as z from 'zod'
import type { AuthUser } from './auth/types.ts'
import { ConfigError } from './env.ts'
import { ApiError, renderError, toApiError } from './errors.ts'
import { httpMetrics } from './metrics.ts'
import { servicesFor, type Bindings, type ExecutionContextLike, type Services } from './services.ts'

export interface AppVariables {
  requestId: string
  services: Services
  functionName: string
  /** Set by requireAuth / requireRole (lib/auth/middleware.ts) once the access token verified. */
  user?: AuthUser
}
export type AppEnv = { Bindings: Bindings; Variables: AppVariables }
export type AppContext = Context<AppEnv>

export interface NexusFunction {
  readonly name: string
  fetch(request: Request, env: Bindings, ctx: ExecutionContextLike): Promise<Response>
  /** The routes the function's app declares, for checks against workers.config.ts. */
  readonly routes: ReadonlyArray<{ method: string; path: string }>
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

const requestIdOf = (req: Request) => {
  const given = req.headers.get('x-request-id')
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID()
}

const corsHeaders = (origin: string | null, allowed: string[]): Record<string, string> | undefined => {
  if (!origin || allowed.length === 0) return undefined
  const ok = allowed.includes('*') || allowed.includes(origin)
  if (!ok) return undefined
  return {
    'access-control-allow-origin': allowed.includes('*') ? '*' : origin,
    'access-control-expose-headers': 'x-request-id, retry-after',
    vary: 'Origin',
  }
}

const errorResponse = (c: AppContext, err: unknown) => {
  let apiError: ApiError
  if (err instanceof HTTPException) {
    apiError =
      err.status >= 500
        ? new ApiError(err.status, 'INTERNAL', 'Internal server error', { cause: err })
        : new ApiError(err.status, err.status === 413 ? 'BODY_TOO_LARGE' : 'INVALID_REQUEST', err.message || 'Bad request')
  } else if (err instanceof ConfigError) {
    apiError = new ApiError(500, 'CONFIG_INVALID', 'The server is misconfigured', { cause: err })
  } else {
    apiError = toApiError(err)
  }
  const requestId = c.get('requestId') ?? crypto.randomUUID()
  if (apiError.status >= 500) {
    const log = c.get('services')?.log
    const fields = { requestId, function: c.get('functionName'), code: apiError.code, err: apiError.cause ?? apiError }
    if (log) log.error('request failed', fields)
    else console.error(JSON.stringify({ level: 'error', msg: 'request failed', requestId, code: apiError.code }))
  }
  const cors = corsHeaders(c.req.header('origin') ?? null, c.get('services')?.config.NEXUS_CORS_ORIGINS ?? [])
  const res = renderError(apiError, requestId, cors)
  // The body was not read to the end: close the connection, or a keep-alive client reuses a socket the
  // server is about to drop (RFC 9112 §9.6). Runtimes that manage connections themselves ignore this.
  if (apiError.status === 413) res.headers.set('connection', 'close')
  return res
}

/**
 * How much of a body over the limit is still read (and dropped) before a 413 goes out: a client that is
 * still sending when the server answers and closes gets a connection reset instead of the 413 (workerd
 * resets at once). Past this, the connection is closed on it.
 */
export const LINGER_MAX_BYTES = 16 * 1024 * 1024

/**
 * What a host already has of a request it hands to a function. On Node, @hono/node-server builds the
 * runtime's full Request (undici's, with a body stream and a signal) the first time a function touches
 * `body` or `signal`: ~0.1 ms per request, a tenth of the gateway's own cost. The Node host reads small
 * bodies itself and says so here; functions ask {@link readBody} and {@link requestSignal}, which fall
 * back to the Request where a host attached nothing (workerd).
 */
export class HostRequestInfo {
  #gone: AbortController | undefined
  #left: unknown
  /** @param body the whole body, already read off the connection */
  constructor(readonly body?: Uint8Array) {}

  /**
   * Aborts when the client goes away. Made on first use, as most requests never ask: on Node 20 an
   * AbortController outlives the young generation's collections (measured: ~0.5 KB per request
   * promoted to the old generation for one made per request and never used).
   */
  get signal(): AbortSignal {
    if (!this.#gone) {
      this.#gone = new AbortController()
      if (this.#left !== undefined) this.#gone.abort(this.#left)
    }
    return this.#gone.signal
  }

  /** For the host: the client went away (its signal aborts now, or is made aborted). */
  clientLeft(reason: unknown): void {
    this.#left = reason
    this.#gone?.abort(reason)
  }
}

/**
 * Kept on the request itself, under a symbol, not in a WeakMap keyed by it: V8's young-generation
 * collector keeps a long-lived WeakMap's entries alive, so every request's entry was promoted to the
 * old generation (measured: ~0.4 KB per request more than with the symbol), for a full collection to
 * free. On the request it dies with the request.
 */
const HOST_INFO = Symbol('nexus.hostInfo')
type WithHostInfo = Request & { [HOST_INFO]?: HostRequestInfo }
const hostInfoOf = (request: Request): HostRequestInfo | undefined => (request as WithHostInfo)[HOST_INFO]

/** For hosts: what they know of `request` (see {@link HostRequestInfo}). */
export const attachHostInfo = (request: Request, info: HostRequestInfo): void => void ((request as WithHostInfo)[HOST_INFO] = info)

/** A signal that aborts when the client of this request goes away. */
export const requestSignal = (c: AppContext): AbortSignal => hostInfoOf(c.req.raw)?.signal ?? c.req.raw.signal

/** Reads the rest of a body and drops it, up to `cap` bytes in all (`size` already read); false past that or on a broken stream. */
const dropRest = async (reader: ReadableStreamDefaultReader<Uint8Array>, size: number, cap: number): Promise<boolean> => {
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return true
      size += value.byteLength
      if (size > cap) {
        await reader.cancel().catch(() => undefined)
        return false
      }
    }
  } catch {
    return false
  }
}

/**
 * Reads to the end (and drops) a request body nobody read, e.g. a POST refused with 401 (or 413 on its
 * Content-Length) before parsing. workerd otherwise closes the keep-alive connection, and a client that
 * reuses it, or is still sending, fails. Returns false past the linger cap or on a broken body: then the
 * connection must close.
 */
const drainUnread = async (req: Request, limit: number): Promise<boolean> => {
  // No body to drain: GET and HEAD never have one, and a body the host read is off the connection.
  if (req.method === 'GET' || req.method === 'HEAD' || hostInfoOf(req)?.body) return true
  return !req.body || req.bodyUsed ? true : dropRest(req.body.getReader(), 0, Math.max(limit, LINGER_MAX_BYTES))
}

/** Shared middleware, applied once to every function. */
const shared = (name: string): MiddlewareHandler<AppEnv> =>
  async function nexusShared(c, next) {
    const started = performance.now()
    const requestId = requestIdOf(c.req.raw)
    c.set('requestId', requestId)
    c.set('functionName', name)
    const { services, release } = await servicesFor(c.env ?? {})
    c.set('services', services)
    const { config } = services
    const cors = corsHeaders(c.req.header('origin') ?? null, config.NEXUS_CORS_ORIGINS)
    try {
      if (c.req.method === 'OPTIONS' && cors && c.req.header('access-control-request-method')) {
        c.res = new Response(null, {
          status: 204,
          headers: {
            ...cors,
            'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
            'access-control-allow-headers':
              c.req.header('access-control-request-headers') ?? 'authorization, content-type, x-request-id',
            'access-control-max-age': '600',
            'x-request-id': requestId,
          },
        })
        return
      }
      const length = c.req.header('content-length')
      if (length !== undefined && Number(length) > config.NEXUS_MAX_BODY_BYTES)
        throw new ApiError(413, 'BODY_TOO_LARGE', `The request body is over the limit of ${config.NEXUS_MAX_BODY_BYTES} bytes`)
      await next()
    } catch (err) {
      c.res = errorResponse(c, err)
    } finally {
      if (release) (c.executionCtx as ExecutionContextLike).waitUntil(release().catch(() => undefined))
      const route = c.req.routePath && c.req.routePath !== '/*' ? c.req.routePath : 'unmatched'
      const labels = { function: name, method: c.req.method, route }
      const m = httpMetrics(services.metrics)
      m.requests.inc({ ...labels, status: c.res.status })
      m.latency.observe((performance.now() - started) / 1000, labels)
    }
    const extra: Record<string, string> = { 'x-request-id': requestId, ...cors }
    if (!(await drainUnread(c.req.raw, services.config.NEXUS_MAX_BODY_BYTES))) extra.connection = 'close'
    try {
      for (const [k, v] of Object.entries(extra)) c.res.headers.set(k, v)
    } catch {
      // A response passed through from fetch() has immutable headers: copy it once.
      const res = new Response(c.res.body, c.res)
      for (const [k, v] of Object.entries(extra)) res.headers.set(k, v)
      c.res = res
    }
  }

/**
 * Wraps a function's Hono app as `{ fetch }`, deployable alone on workerd or mounted by the Node host.
 * A handler never renders an error itself: it throws {@link ApiError}, rendered here.
 */
export const defineFunction = (name: string, app: Hono<AppEnv>): NexusFunction => {
  const outer = new Hono<AppEnv>()
  outer.use('*', shared(name))
  outer.route('/', app)
  outer.notFound((c) => {
    throw new ApiError(404, 'NOT_FOUND', `No route for ${c.req.method} ${new URL(c.req.url).pathname}`)
  })
  outer.onError((err, c) => errorResponse(c, err))
  // Hono lists a route once per handler (middleware included): keep each method and path once.
  const routes = [...new Map(app.routes.filter((r) => r.method !== 'ALL').map((r) => [`${r.method} ${r.path}`, r])).values()].map(
    (r) => ({ method: r.method, path: r.path }),
  )
  return {
    name,
    routes,
    fetch: async (request, env, ctx) => {
      try {
        return await outer.fetch(request, env, ctx as never)
      } catch (err) {
        // Only reached when the wrapper itself failed before Hono's error handler could run.
        const apiError = err instanceof ApiError ? err : toApiError(err)
        return renderError(apiError, requestIdOf(request))
      }
    },
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

const decodeUtf8 = (bytes: Uint8Array) => {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new ApiError(400, 'INVALID_ENCODING', 'The request body is not valid UTF-8')
  }
}

const tooLarge = (limit: number) => new ApiError(413, 'BODY_TOO_LARGE', `The request body is over the limit of ${limit} bytes`)

/** Reads a request body as text, enforcing the size limit whether or not Content-Length was sent. */
export const readBody = async (c: AppContext): Promise<string> => {
  const limit = c.get('services').config.NEXUS_MAX_BODY_BYTES
  const given = hostInfoOf(c.req.raw)?.body
  if (given) {
    if (given.byteLength > limit) throw tooLarge(limit)
    return decodeUtf8(given)
  }
  const body = c.req.raw.body
  if (!body) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      // Drop the rest (up to LINGER_MAX_BYTES), so the client finishes sending and reads the 413.
      await dropRest(reader, size, Math.max(limit, LINGER_MAX_BYTES))
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  const all = new Uint8Array(size)
  let offset = 0
  for (const ch of chunks) {
    all.set(ch, offset)
    offset += ch.byteLength
  }
  return decodeUtf8(all)
}

const describeIssue = (issue: z.core.$ZodIssue) => {
  const path = issue.path.map(String).join('.')
  return { path, message: path ? `${path}: ${issue.message}` : issue.message }
}

/** Parses and validates a JSON body with a zod schema; every failure is a 4xx in the envelope. */
export const jsonBody = async <S extends z.ZodType>(c: AppContext, schema: S): Promise<z.infer<S>> => {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i.test(type))
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'The request body must be JSON (Content-Type: application/json)')
  const text = await readBody(c)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ApiError(400, 'INVALID_JSON', 'The request body is not valid JSON')
  }
  return parseWith(schema, value)
}

/** Validates any value (query, params, body) with a zod schema, failing with a 400 that names the field. */
export const parseWith = <S extends z.ZodType>(schema: S, value: unknown): z.infer<S> => {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const first = describeIssue(result.error.issues[0]!)
  throw new ApiError(400, 'VALIDATION_FAILED', first.message, { param: first.path || null })
}
