/** PostgreSQL access: one postgres.js client, the schema's tables as safe identifiers, and migrations. */
import postgres from 'postgres'
import { migrations as allMigrations, type Migration } from './migrations.ts'

export type Sql = postgres.Sql<Record<string, never>>
export type TxSql = postgres.TransactionSql<Record<string, never>>

export const TABLES = [
  'users',
  'signing_keys',
  'human_sessions',
  'agents',
  'agent_state',
  'routing_rules',
  'commands',
  'events',
  'gateway_keys',
  'model_aliases',
  'gateway_usage',
  'schema_migrations',
] as const
export type Table = (typeof TABLES)[number]

/** The database handle every function receives. `t.commands` is `"nexus_core"."commands"`, a safe identifier. */
export interface Db {
  sql: Sql
  schema: string
  t: Record<Table, postgres.Helper<string>>
  close(): Promise<void>
}

export interface DbOptions {
  schema: string
  /** Pool size; 1 for a per-request client on workerd. */
  max: number
  /** On workerd a client must not be ended (porsager/postgres#1202); its socket closes with the request. */
  endOnClose?: boolean
  connectTimeoutSeconds?: number
}

const tablesFor = (sql: Sql, schema: string) =>
  Object.fromEntries(TABLES.map((name) => [name, sql(`${schema}.${name}`)])) as unknown as Db["t"]

/** Creates a client. Connects lazily: nothing touches the network until the first query. */
export const createDb = (url: string, options: DbOptions): Db => {
  const sql = postgres(url, {
    max: options.max,
    idle_timeout: 30,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    max_lifetime: 60 * 30,
    onnotice: () => undefined,
    // int8 (ids, counts, counters) as numbers: ours stay far below 2^53, and BigInt does not serialize to JSON.
    types: {
      int8: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
  }) as unknown as Sql
  return {
    sql,
    schema: options.schema,
    t: tablesFor(sql, options.schema),
    close: async () => {
      if (options.endOnClose !== false) await sql.end({ timeout: 5 })
    },
  }
}

/** Quick reachability check used by /health. */
export const pingDb = async (db: Db): Promise<void> => {
  await db.sql`select 1`
}

const LOCK_NAMESPACE = 7_337_001

/**
 * Applies pending migrations, each in its own transaction, under an advisory lock so that several
 * processes starting at once migrate exactly once. Returns the versions it applied (empty when
 * the schema was already current: a second start changes nothing).
 */
export const migrate = async (db: Db, migrations: Migration[] = allMigrations): Promise<number[]> => {
  const { sql, schema } = db
  const quoted = `"${schema}"`
  const applied: number[] = []
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(${schema}))`
    await tx.unsafe(`create schema if not exists ${quoted}`)
    await tx.unsafe(
      `create table if not exists ${quoted}.schema_migrations (
         version integer primary key, name text not null, applied_at timestamptz not null default now())`,
    )
    const rows = await tx<{ version: number }[]>`select version from ${db.t.schema_migrations}`
    const done = new Set(rows.map((r) => Number(r.version)))
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue
      await tx.unsafe(m.sql.replaceAll('{schema}', quoted))
      await tx`insert into ${db.t.schema_migrations} (version, name) values (${m.version}, ${m.name})`
      applied.push(m.version)
    }
  })
  return applied
}
