/**
 * The services a function gets: config, database, bus, logger, metrics. A long-lived host (Node)
 * builds them once and hands them in through the `NEXUS_SERVICES` binding; elsewhere (workerd) they
 * are made per request, as that runtime requires for sockets, from the string bindings alone.
 */
import type { FetchLike } from './ai/egress.ts'
import { createBus, createMemoryBus, type Bus } from './bus/index.ts'
import { createDb, migrate, type Db } from './db/index.ts'
import { parseEnv, type Config } from './env.ts'
import { createLogger, type Logger } from './log.ts'
import { Registry } from './metrics.ts'
import { webSocketPairUpgrader, type WebSocketUpgrader } from './ws.ts'

export interface Services {
  config: Config
  db: Db
  bus: Bus
  log: Logger
  metrics: Registry
  /**
   * Set by a long-lived host. `draining` turns readiness to 503 on SIGTERM so load balancers stop
   * sending; `shutdown` aborts then, so long-lived streams (SSE, WebSocket) can end themselves.
   */
  lifecycle?: { draining: boolean; shutdown: AbortSignal }
  /** Completes WebSocket handshakes on this runtime; absent where the runtime has none. */
  websocket?: WebSocketUpgrader
  /**
   * Where services are per request: keeps them (the Redis connection) until `done` settles, for a
   * response that outlives its handler (a stream, a WebSocket). Absent on a long-lived host.
   */
  keepOpenUntil?: (done: Promise<unknown>) => void
  /**
   * The fetch the gateway calls Ollama with (behind its egress guard), when the host has a faster one
   * than the runtime's: the Node host's keep-alive `node:http` client. The runtime's fetch otherwise.
   */
  upstreamFetch?: FetchLike
}

/** What a host may bind as `NEXUS_SERVICES`. */
export interface ServiceProvider {
  services: Services
}

export interface Bindings {
  NEXUS_SERVICES?: ServiceProvider
  [key: string]: unknown
}

/** The subset of the platform's ExecutionContext that functions use. */
export interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void
  passThroughOnException?(): void
}

// Per-isolate state on per-request platforms: plain data only, never sockets (workerd forbids sharing
// I/O objects between requests).
const isolate: { metrics?: Registry; memoryBus?: Bus; migrated?: Map<string, Promise<unknown>> } = {}

export interface ScopedServices {
  services: Services
  /** Releases what was made for this request; the wrapper calls it through waitUntil after the handler. */
  release?: () => Promise<void>
}

/**
 * Services for one request on a platform without a host-provided set. The database client and the
 * Redis connection live for this request only.
 */
export const requestServices = async (bindings: Bindings): Promise<ScopedServices> => {
  const config = parseEnv(bindings)
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required on this runtime (no embedded database here)')
  const db = createDb(config.DATABASE_URL, { schema: config.NEXUS_DB_SCHEMA, max: 1, endOnClose: false })
  const bus =
    config.REDIS_URL || config.UPSTASH_REDIS_REST_URL ? createBus(config) : (isolate.memoryBus ??= createMemoryBus())
  const metrics = (isolate.metrics ??= new Registry())
  const log = createLogger(config.LOG_LEVEL)

  // Migrations once per isolate and schema (a cheap no-op when current; the host usually ran them).
  const migrated = (isolate.migrated ??= new Map())
  let done = migrated.get(config.NEXUS_DB_SCHEMA)
  if (!done) {
    done = migrate(db)
    migrated.set(config.NEXUS_DB_SCHEMA, done)
    done.catch(() => migrated.delete(config.NEXUS_DB_SCHEMA))
  }
  await done
  // postgres.js must not be ended on workerd (porsager/postgres#1202): its socket closes with the request.
  const holds: Promise<unknown>[] = []
  const keepOpenUntil = (done: Promise<unknown>) => {
    holds.push(done.catch(() => undefined))
  }
  const release =
    bus.kind === 'redis'
      ? async () => {
          await Promise.all(holds)
          await bus.close()
        }
      : undefined
  return { services: { config, db, bus, log, metrics, websocket: webSocketPairUpgrader(), keepOpenUntil }, release }
}

/** The host's services when it gave some, else a per-request set. */
export const servicesFor = async (bindings: Bindings): Promise<ScopedServices> =>
  bindings.NEXUS_SERVICES ? { services: bindings.NEXUS_SERVICES.services } : requestServices(bindings)
