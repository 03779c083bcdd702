/**
 * The Node host: serves the functions of workers.config.ts (all, or a group or a few) on one port,
 * with one shared database pool and bus, embedded PostgreSQL when no DATABASE_URL is given, and a
 * graceful drain on close.
 */
import { STATUS_CODES, createServer, type IncomingMessage, type RequestListener, type ServerOptions } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setMaxListeners } from 'node:events'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import { serve, type HttpBindings, type ServerType } from '@hono/node-server'
import { functions, type FunctionSpec, type ServiceGroup } from '../../workers.config.ts'
import { attachHostInfo, HostRequestInfo, type NexusFunction } from '../../lib/app.ts'
import { createBus } from '../../lib/bus/index.ts'
import { createDb, migrate } from '../../lib/db/index.ts'
import { createDispatcher } from '../../lib/dispatch.ts'
import { parseEnv, type Config } from '../../lib/env.ts'
import { createLogger, type LogSink } from '../../lib/log.ts'
import { Registry } from '../../lib/metrics.ts'
import { runStartupTasks } from '../../lib/startup.ts'
import type { Bindings, ExecutionContextLike, Services } from '../../lib/services.ts'
import type { WebSocketUpgrader, WsConnection } from '../../lib/ws.ts'
import { withKeyEncryptionKey } from '../kek.ts'
import { createModelsSource } from '../models-file.ts'
import { createNodeHttpFetch } from './http-fetch.ts'
import { logVacuums, startEmbeddedPostgres, type EmbeddedPostgres } from './pglite.ts'

export interface HostOptions {
  /** Environment (process.env by default). */
  env?: Record<string, string | undefined>
  /** Serve only these service groups. */
  groups?: ServiceGroup[]
  /** Serve only these functions (by name). */
  functions?: string[]
  /** Where log lines go (stdout/stderr by default); tests capture them here. */
  logSink?: LogSink
  /** Project root, for resolving function files. */
  root?: string
  /** More functions to serve beside the selected ones (test fixtures). */
  extraFunctions?: FunctionSpec[]
}

export interface NodeHost {
  url: string
  port: number
  /** The PostgreSQL it uses: DATABASE_URL, or the embedded PGlite's loopback address. */
  databaseUrl: string
  services: Services
  config: Config
  served: FunctionSpec[]
  /** Stops accepting, drains in-flight requests (up to `graceMs`), then releases every connection. */
  close(graceMs?: number): Promise<void>
}

/** Picks the functions to serve; an unknown group or function name is an error naming it. */
export const selectFunctions = (groups?: string[], names?: string[]): FunctionSpec[] => {
  const all: FunctionSpec[] = [...functions]
  for (const g of groups ?? [])
    if (!all.some((f) => f.group === g)) throw new Error(`--service: unknown service group "${g}"`)
  for (const n of names ?? []) if (!all.some((f) => f.name === n)) throw new Error(`--function: unknown function "${n}"`)
  if (!groups?.length && !names?.length) return all
  return all.filter((f) => groups?.includes(f.group) || names?.includes(f.name))
}

const processMetrics = (metrics: Registry) => {
  const rss = metrics.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.')
  rss.collect(() => rss.set(process.memoryUsage.rss()))
  const heap = metrics.gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.')
  heap.collect(() => heap.set(process.memoryUsage().heapUsed))
  const started = metrics.gauge('process_start_time_seconds', 'Start time of the process since the epoch, in seconds.')
  started.set(Math.round(Date.now() / 1000 - process.uptime()))
}

export const startNodeHost = async (options: HostOptions = {}): Promise<NodeHost> => {
  let kekCreated: string | undefined
  const env = withKeyEncryptionKey(options.env ?? process.env, (path) => (kekCreated = path))
  const config = parseEnv(env)
  const root = options.root ?? process.cwd()
  const log = createLogger(config.LOG_LEVEL, {}, options.logSink)
  // The gateway's models file: validated before anything starts, re-read when it changes (lib/ai/models.ts).
  const modelsSource = createModelsSource(config, (msg, fields) => log.warn(msg, fields))
  if (kekCreated) log.info('created the key-encryption key for signing keys; back it up with the data', { path: kekCreated })
  const served = [...selectFunctions(options.groups, options.functions), ...(options.extraFunctions ?? [])]

  let embedded: EmbeddedPostgres | undefined
  let databaseUrl = config.DATABASE_URL
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.NEXUS_DATA_DIR, { onVacuum: logVacuums(log) })
    databaseUrl = embedded.url
    log.info('embedded PostgreSQL (PGlite) ready', { dataDir: embedded.dataDir })
  }
  const db = createDb(databaseUrl, {
    schema: config.NEXUS_DB_SCHEMA,
    // PGlite is one backend behind a multiplexer: a few connections are plenty.
    max: embedded ? Math.min(4, config.NEXUS_DB_POOL_MAX) : config.NEXUS_DB_POOL_MAX,
  })
  const bus = createBus(config)
  const metrics = new Registry()
  processMetrics(metrics)
  const shutdown = new AbortController()
  // Every long-poll claim and live stream listens on it while it lasts (and removes its listener when
  // it ends): hundreds at once are normal, not the leak Node's default warning at 11 suspects.
  setMaxListeners(0, shutdown.signal)
  const lifecycle = { draining: false, shutdown: shutdown.signal }
  const upgrades = nodeUpgrades(config.NEXUS_MAX_BODY_BYTES)
  // Calls to Ollama go over keep-alive node:http: a fraction of the CPU of Node's fetch per call.
  const upstream = createNodeHttpFetch()
  const services: Services = { config, db, bus, log, metrics, lifecycle, websocket: upgrades.upgrader, upstreamFetch: upstream.fetch }

  const applied = await migrate(db)
  log.info(applied.length ? 'migrations applied' : 'schema is current', { schema: config.NEXUS_DB_SCHEMA, applied })
  await runStartupTasks(services)

  const modules = new Map<string, NexusFunction>()
  for (const spec of served) {
    const mod = (await import(pathToFileURL(resolve(root, spec.file)).href)) as { default: NexusFunction }
    modules.set(spec.name, mod.default)
  }

  const bindings: Bindings = { ...env, NEXUS_SERVICES: { services } }
  if (modelsSource) bindings.NEXUS_MODELS_SOURCE = modelsSource
  const pending = new Set<Promise<unknown>>()
  const ctx: ExecutionContextLike = {
    waitUntil(p) {
      const tracked = p.catch((err) => log.warn('background task failed', { err })).finally(() => pending.delete(tracked))
      pending.add(tracked)
    },
    passThroughOnException() {},
  }

  let inFlight = 0
  let idle: (() => void) | undefined
  const dispatch = createDispatcher(served)
  const fetcherFor = (name: string) => {
    const fn = modules.get(name)
    return fn && ((req: Request) => fn.fetch(req, bindings, ctx))
  }

  const server: ServerType = await new Promise((resolveServer) => {
    const s = serve(
      {
        hostname: config.HOST,
        port: config.PORT,
        createServer: ((opts: ServerOptions, listener: RequestListener) =>
          createServer(opts, (incoming, outgoing) => readSmallBody(incoming, () => listener(incoming, outgoing)))) as typeof createServer,
        // Our server is HTTP/1.1 (node:http), never HTTP/2: its bindings are HttpBindings.
        fetch: async (req, bindingsOfNode) => {
          const nodeEnv = bindingsOfNode as Partial<HttpBindings> | undefined
          // In flight until the response is fully written (or the client went away), not merely returned.
          inFlight++
          let done = false
          const finish = () => {
            if (done) return
            done = true
            if (--inFlight === 0) idle?.()
          }
          const outgoing = nodeEnv?.outgoing
          const incoming = nodeEnv?.incoming as (IncomingMessage & { rawBody?: Buffer }) | undefined
          // What functions would otherwise build undici's full Request for: the body read, and a signal.
          const info = new HostRequestInfo(incoming?.rawBody)
          attachHostInfo(req, info)
          if (outgoing)
            outgoing.once('close', () => {
              if (!outgoing.writableFinished) info.clientLeft(new DOMException('The client went away', 'AbortError'))
              finish()
            })
          try {
            // The client address comes from the socket, never from what the client says.
            req.headers.set('x-nexus-client-ip', incoming?.socket?.remoteAddress ?? '')
            return await dispatch(req, fetcherFor)
          } catch (err) {
            finish()
            throw err
          } finally {
            if (!outgoing) finish()
          }
        },
      },
      () => resolveServer(s),
    )
  })
  server.on('upgrade', (incoming: IncomingMessage, socket: Duplex, head: Buffer) => {
    void upgrades.handle(incoming, socket, head, (req) => dispatch(req, fetcherFor))
  })
  const port = (server.address() as AddressInfo).port
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`

  let closing: Promise<void> | undefined
  const close = (graceMs = 25_000) =>
    (closing ??= (async () => {
      lifecycle.draining = true
      shutdown.abort() // long-lived streams (SSE, WebSocket) end themselves on this signal
      const stopped = new Promise<void>((r) => server.close(() => r()))
      upgrades.closeAll()
      const http = server as { closeIdleConnections?: () => void; closeAllConnections?: () => void }
      http.closeIdleConnections?.()
      if (inFlight > 0)
        await Promise.race([new Promise<void>((r) => (idle = r)), new Promise((r) => setTimeout(r, graceMs))])
      http.closeIdleConnections?.()
      // Whatever is still open after the grace period is cut.
      const cut = setTimeout(() => http.closeAllConnections?.(), inFlight > 0 ? 0 : 1_000)
      await stopped
      clearTimeout(cut)
      await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 5_000))])
      await bus.close().catch(() => undefined)
      await db.close().catch(() => undefined)
      upstream.close()
      await embedded?.close()
    })())

  return { url, port, databaseUrl, services, config, served, close }
}

/** Bodies up to this size (with a content-length) are read before the request is handed on. */
const SMALL_BODY_BYTES = 64 * 1024
const EMPTY = Buffer.alloc(0)

/**
 * Reads a small body (a declared content-length up to {@link SMALL_BODY_BYTES}; none at all without
 * content-length or transfer-encoding) into a buffer before `next`, where @hono/node-server takes it
 * as the Request's body in one chunk and functions take it as is (lib/app.ts, HostRequestInfo): far
 * cheaper on Node 20 than the web stream otherwise wrapped around the socket. Larger or chunked
 * bodies stream as before, so the body limit still applies while they arrive.
 */
const readSmallBody = (incoming: IncomingMessage & { rawBody?: Buffer }, next: () => void) => {
  if (incoming.headers['transfer-encoding'] !== undefined) return next()
  const declared = incoming.headers['content-length']
  const length = declared === undefined ? 0 : Number(declared)
  if (length === 0) {
    incoming.rawBody = EMPTY
    return next()
  }
  if (!(length > 0 && length <= SMALL_BODY_BYTES)) return next()
  const chunks: Buffer[] = []
  incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
  incoming.once('end', () => {
    incoming.rawBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    next()
  })
  // A client that leaves mid-body: nothing to answer.
  incoming.once('error', () => incoming.socket?.destroy())
}

/**
 * WebSocket upgrades on the Node HTTP server: the upgrade request goes through the same dispatcher
 * and function as any other; the function's call to the upgrader hands the socket to `ws`. A function
 * that answers otherwise (401, 403, 426...) has its response written on the socket, then closed.
 */
const nodeUpgrades = (maxPayload: number) => {
  const wss = new WebSocketServer({ noServer: true, maxPayload })
  const pending = new WeakMap<Request, { incoming: IncomingMessage; socket: Duplex; head: Buffer; upgraded: boolean }>()
  const open = new Set<WebSocket>()

  const upgrader: WebSocketUpgrader = {
    upgrade(request, handlers) {
      const record = pending.get(request)
      if (!record || record.upgraded) throw new Error('not an upgrade request of this host')
      record.upgraded = true
      wss.handleUpgrade(record.incoming, record.socket, record.head, (ws) => {
        open.add(ws)
        const conn: WsConnection = {
          send: (data) => {
            if (ws.readyState === ws.OPEN) ws.send(data)
          },
          close: (code, reason) => ws.close(code ?? 1000, reason),
          get bufferedAmount() {
            return ws.bufferedAmount
          },
          get isOpen() {
            return ws.readyState === ws.OPEN
          },
        }
        ws.on('message', (data, isBinary) => {
          if (!isBinary) handlers.onMessage?.(data.toString(), conn)
        })
        ws.on('error', () => undefined) // a broken client socket ends in 'close'
        ws.on('close', (code, reason) => {
          open.delete(ws)
          handlers.onClose?.(code, reason.toString())
        })
        handlers.onOpen?.(conn)
      })
      // Never written: the socket now belongs to `ws`. It only completes the function's return value.
      return new Response(null, { status: 200 })
    },
  }

  const handle = async (incoming: IncomingMessage, socket: Duplex, head: Buffer, dispatch: (req: Request) => Promise<Response>) => {
    socket.on('error', () => socket.destroy())
    const headers = new Headers()
    for (let i = 0; i < incoming.rawHeaders.length; i += 2) headers.append(incoming.rawHeaders[i]!, incoming.rawHeaders[i + 1]!)
    headers.set('x-nexus-client-ip', incoming.socket.remoteAddress ?? '')
    const request = new Request(`http://${incoming.headers.host ?? 'localhost'}${incoming.url ?? '/'}`, {
      method: incoming.method,
      headers,
    })
    const record = { incoming, socket, head, upgraded: false }
    pending.set(request, record)
    let response: Response
    try {
      response = await dispatch(request)
    } catch {
      response = new Response('{"error":{"message":"Internal server error","type":"api_error","code":"INTERNAL","param":null}}', {
        status: 500,
        headers: { 'content-type': 'application/json' },
      })
    }
    if (record.upgraded) return
    const body = Buffer.from(await response.arrayBuffer())
    const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`]
    response.headers.forEach((v, k) => {
      if (k !== 'content-length' && k !== 'connection' && k !== 'transfer-encoding') lines.push(`${k}: ${v}`)
    })
    lines.push(`content-length: ${body.length}`, 'connection: close', '', '')
    socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), body]))
  }

  const closeAll = () => {
    for (const ws of open) ws.close(1001, 'server shutting down')
  }

  return { upgrader, handle, closeAll }
}
