/**
 * `npm run auth:rotate`: rotates the signing key from the command line, against DATABASE_URL or the
 * embedded database in NEXUS_DATA_DIR (which a running server holds: stop it first, or call
 * POST /api/v1/auth/keys/rotate). Prints `{"kid","previous"}` as JSON.
 */
import { createBus } from '../lib/bus/index.ts'
import { createDb, migrate } from '../lib/db/index.ts'
import { ConfigError, parseEnv } from '../lib/env.ts'
import { ensureSigningKeys, rotateSigningKeys } from '../lib/auth/keys.ts'
import { createLogger } from '../lib/log.ts'
import { Registry } from '../lib/metrics.ts'
import type { Services } from '../lib/services.ts'
import { withKeyEncryptionKey } from './kek.ts'
import { startEmbeddedPostgres, type EmbeddedPostgres } from './node/pglite.ts'

const main = async (): Promise<number> => {
  const env = withKeyEncryptionKey(process.env)
  const config = parseEnv(env)
  // Logs go to stderr, so stdout holds only the JSON result.
  const log = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, { tool: 'auth:rotate' }, (line) =>
    process.stderr.write(`${line}\n`),
  )
  let embedded: EmbeddedPostgres | undefined
  const url = config.DATABASE_URL ?? (embedded = await startEmbeddedPostgres(config.NEXUS_DATA_DIR)).url
  const db = createDb(url, { schema: config.NEXUS_DB_SCHEMA, max: 2 })
  const bus = createBus(config)
  try {
    await migrate(db)
    const services: Services = { config, db, bus, log, metrics: new Registry() }
    // Publishes `key_rotated` on the bus when it is Redis, so running processes reload their key sets at once;
    // without a shared bus they follow within their key-set max age (60 s) or at the first token of the new kid.
    await ensureSigningKeys(services) // a database no server has started on yet gets its first keys
    const { kid, previous } = await rotateSigningKeys(services)
    process.stdout.write(`${JSON.stringify({ kid, previous: previous ?? null })}\n`)
    return 0
  } finally {
    await bus.close().catch(() => undefined)
    await db.close().catch(() => undefined)
    await embedded?.close()
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof ConfigError ? err.message : (err as Error).message
    process.stderr.write(`nexus auth:rotate: ${message}\n`)
    process.exit(1)
  },
)
