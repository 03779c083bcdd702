/**
 * Services for in-process unit tests of lib/ code: a fresh schema on the run's database, a memory bus,
 * captured logs. `longLived` marks them as a Node host does (lifecycle set), else they act per request.
 */
import { inject } from 'vitest'
import { createMemoryBus, type Bus } from '../../lib/bus/index.ts'
import { createDb, migrate, type Db } from '../../lib/db/index.ts'
import { parseEnv } from '../../lib/env.ts'
import { createLogger } from '../../lib/log.ts'
import { Registry } from '../../lib/metrics.ts'
import type { Services } from '../../lib/services.ts'

export interface TestServicesOptions {
  schema?: string
  env?: Record<string, string>
  bus?: Bus
  longLived?: boolean
  /** Another client on the same schema (a second process), or a new one. */
  db?: Db
}

export interface TestServices extends Services {
  logs: string[]
  /** Drops nothing: call dropTestSchema once per schema. */
  closeDb(): Promise<void>
}

export const testKek = Buffer.from(new Uint8Array(32).fill(7)).toString('base64')

export const newSchemaName = (prefix = 'u') => `${prefix}_${Math.random().toString(36).slice(2, 10)}`

/** Builds services on `schema` (migrated), a memory bus unless one is given, and a log capture. */
export const makeServices = async (options: TestServicesOptions = {}): Promise<TestServices> => {
  const schema = options.schema ?? newSchemaName()
  const config = parseEnv({
    NEXUS_DB_SCHEMA: schema,
    DATABASE_URL: inject('databaseUrl'),
    NEXUS_KEY_ENCRYPTION_KEY: testKek,
    NEXUS_ADMIN_PASSWORD: 'unit-admin-password',
    ...options.env,
  })
  const db = options.db ?? createDb(inject('databaseUrl'), { schema, max: 2 })
  await migrate(db)
  const logs: string[] = []
  const log = createLogger('debug', {}, (line) => logs.push(line))
  const services: TestServices = {
    config,
    db,
    bus: options.bus ?? createMemoryBus(),
    log,
    metrics: new Registry(),
    logs,
    closeDb: () => db.close(),
  }
  if (options.longLived) services.lifecycle = { draining: false, shutdown: new AbortController().signal }
  return services
}

/** Drops a unit test's schema. */
export const dropTestSchema = async (db: Db) => {
  await db.sql.unsafe(`drop schema if exists "${db.schema}" cascade`)
}
