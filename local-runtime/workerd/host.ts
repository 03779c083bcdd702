/**
 * The workerd host: every function bundled as its own worker and served by workerd through
 * miniflare, behind a router worker, offline, with outbound network limited to private and loopback
 * addresses. With no DATABASE_URL it serves embedded PostgreSQL from this Node process; with no
 * Redis it serves an in-memory bus over the Redis REST protocol, so all workers share one bus.
 */
import { mkdirSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { join, resolve } from 'node:path'
import { Log, LogLevel as MfLogLevel, Miniflare } from 'miniflare'
import type { FunctionSpec, ServiceGroup } from '../../workers.config.ts'
import { createDb, migrate } from '../../lib/db/index.ts'
import { createMemoryBus } from '../../lib/bus/index.ts'
import { EnvSchema, parseEnv, type Config } from '../../lib/env.ts'
import { createLogger, type LogSink } from '../../lib/log.ts'
import { Registry } from '../../lib/metrics.ts'
import { isSovereignHost } from '../../lib/sovereignty.ts'
import { runStartupTasks } from '../../lib/startup.ts'
import { withKeyEncryptionKey } from '../kek.ts'
import { readModelsFile } from '../models-file.ts'
import { selectFunctions } from '../node/host.ts'
import { logVacuums, startEmbeddedPostgres, type EmbeddedPostgres } from '../node/pglite.ts'
import { bindingName, buildAll, COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from './build.ts'

export interface WorkerdHostOptions {
  env?: Record<string, string | undefined>
  groups?: ServiceGroup[]
  functions?: string[]
  logSink?: LogSink
  /** More functions to serve beside the selected ones (test fixtures). */
  extraFunctions?: FunctionSpec[]
}

export interface WorkerdHost {
  url: string
  port: number
  config: Config
  served: FunctionSpec[]
  close(): Promise<void>
}

const hostOf = (url: string | undefined) => {
  if (!url) return undefined
  try {
    return new URL(url).hostname
  } catch {
    return undefined
  }
}

export const startWorkerdHost = async (options: WorkerdHostOptions = {}): Promise<WorkerdHost> => {
  let kekCreated: string | undefined
  const env = withKeyEncryptionKey(options.env ?? process.env, (path) => (kekCreated = path))
  const config = parseEnv(env)
  const log = createLogger(config.LOG_LEVEL, { host: 'workerd' }, options.logSink)
  const modelsJson = readModelsFile(config) // validated before anything starts
  if (kekCreated) log.info('created the key-encryption key for signing keys; back it up with the data', { path: kekCreated })
  const served = [...selectFunctions(options.groups, options.functions), ...(options.extraFunctions ?? [])]
  // miniflare and wrangler must stay offline: no metrics, no Request.cf download.
  process.env.WRANGLER_SEND_METRICS = 'false'
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'
  const stateDir = resolve(config.NEXUS_DATA_DIR, 'workerd')
  mkdirSync(stateDir, { recursive: true })
  process.env.XDG_CONFIG_HOME ??= join(stateDir, 'config')

  const closers: Array<() => Promise<void>> = []
  const closeAll = async () => {
    for (const fn of closers.reverse()) await fn().catch(() => undefined)
  }
  try {
    let embedded: EmbeddedPostgres | undefined
    let databaseUrl = config.DATABASE_URL
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres(config.NEXUS_DATA_DIR, { onVacuum: logVacuums(log) })
      closers.push(() => embedded!.close())
      databaseUrl = embedded.url
    }
    // Migrations and start-up tasks run here, once, as a deploy step would; workers also check lazily.
    const db = createDb(databaseUrl, { schema: config.NEXUS_DB_SCHEMA, max: 2 })
    closers.push(() => db.close())
    await migrate(db)
    await runStartupTasks({ config, db, bus: createMemoryBus(), log, metrics: new Registry() })

    const vars: Record<string, string> = {}
    for (const key of Object.keys(EnvSchema.shape)) {
      const v = env[key]
      if (typeof v === 'string' && v !== '') vars[key] = v
    }
    vars.DATABASE_URL = databaseUrl
    // Workers have no filesystem: the gateway's models file goes in as its (validated) content.
    if (modelsJson !== undefined) vars.NEXUS_MODELS_JSON = modelsJson
    if (!config.REDIS_URL && !config.UPSTASH_REDIS_REST_URL) {
      const { startBusRestServer } = await import('../bus-rest-server.ts')
      const busServer = await startBusRestServer({ backend: { kind: 'memory' } })
      closers.push(() => busServer.close())
      vars.UPSTASH_REDIS_REST_URL = busServer.url
      vars.UPSTASH_REDIS_REST_TOKEN = busServer.token
    }

    // Egress: private and loopback only (sockets and fetch alike); public only when an operator
    // pointed the database or Redis at a public host themselves. Ollama hosts are checked at parse.
    const publicNeeded = [vars.DATABASE_URL, vars.REDIS_URL, vars.UPSTASH_REDIS_REST_URL]
      .map(hostOf)
      .some((h) => h !== undefined && !isSovereignHost(h))
    const network = { allow: publicNeeded ? ['public', 'private', 'local'] : ['private', 'local'] }

    const { router, workers } = await buildAll(served)
    const common = { compatibilityDate: COMPATIBILITY_DATE, compatibilityFlags: COMPATIBILITY_FLAGS }
    // Each bundle is one self-contained ES module, given as such: with `script` and `modules: true`,
    // miniflare parses every bundle (about 0.5 MB each) to look for imports, seconds of CPU per host.
    const esModule = (name: string, code: string) => [{ type: 'ESModule' as const, path: `${name}.mjs`, contents: code }]
    const sink = options.logSink
    const mf = new Miniflare({
      host: config.HOST,
      port: config.PORT,
      cf: false,
      log: new Log(MfLogLevel.WARN),
      ...(sink
        ? {
            handleRuntimeStdio(stdout: Readable, stderr: Readable) {
              const lines = (stream: Readable, level: 'info' | 'error') => {
                let buf = ''
                stream.on('data', (chunk: Buffer) => {
                  buf += chunk.toString('utf8')
                  let i: number
                  while ((i = buf.indexOf('\n')) >= 0) {
                    const line = buf.slice(0, i).trim()
                    buf = buf.slice(i + 1)
                    if (line) sink(line, level)
                  }
                })
              }
              lines(stdout, 'info')
              lines(stderr, 'error')
            },
          }
        : {}),
      workers: [
        {
          ...common,
          name: 'router',
          modules: esModule('router', router.code),
          serviceBindings: Object.fromEntries(served.map((f) => [bindingName(f.name), f.name])),
          outboundService: { network: { allow: [] } },
        },
        ...workers.map((w) => ({
          ...common,
          name: w.name,
          modules: esModule(w.name, w.code),
          bindings: vars,
          outboundService: { network },
        })),
      ],
    })
    closers.push(() => mf.dispose())
    const url = await mf.ready
    const port = Number(url.port)
    log.info('workerd ready', { url: url.origin, functions: served.map((f) => f.name) })
    let closing: Promise<void> | undefined
    return { url: url.origin, port, config, served, close: () => (closing ??= closeAll()) }
  } catch (err) {
    await closeAll()
    throw err
  }
}
