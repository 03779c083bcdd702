/** Embedded PostgreSQL: PGlite kept on disk, served over the wire protocol so the same postgres.js code runs on it. */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import postgres from 'postgres'
import type { Logger } from '../../lib/log.ts'
import { servePglite } from './pglite-server.ts'

export interface EmbeddedPostgres {
  /** A postgres:// URL on 127.0.0.1 for this process only. */
  url: string
  dataDir: string
  /**
   * VACUUM (ANALYZE) of the whole database, through the wire server like any client (so never inside
   * another connection's transaction). Runs every {@link VACUUM_EVERY_MS} on its own; resolves to its ms.
   */
  vacuum(): Promise<number>
  close(): Promise<void>
}

export interface EmbeddedOptions {
  /** Milliseconds between automatic vacuums; 0 turns them off. */
  vacuumEveryMs?: number
  /** Told of each automatic vacuum: its duration, or why it failed. */
  onVacuum?: (result: { ms: number } | { err: unknown }) => void
}

/**
 * PGlite is one backend with no postmaster, so PostgreSQL's autovacuum never runs (`autovacuum` shows
 * `on`, but no launcher exists) and the cumulative statistics it would go by are not kept either. Left
 * alone, every update's old row version stays: a command is written four times in its life (created,
 * dispatched, completed, and the lease fields), so its table and indexes grow ~4x past their live size,
 * for good, and the planner never gets statistics. The embedded host does autovacuum's job itself, at
 * autovacuum's default interval (`autovacuum_naptime`, 1 min).
 */
export const VACUUM_EVERY_MS = 60_000

/** The hosts' report of automatic vacuums: failures as warnings, durations at debug level. */
export const logVacuums =
  (log: Pick<Logger, 'warn' | 'debug'>): EmbeddedOptions['onVacuum'] =>
  (r) =>
    'err' in r ? log.warn('embedded PostgreSQL: vacuum failed', { err: r.err }) : log.debug('embedded PostgreSQL: vacuumed', { ms: Math.round(r.ms) })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Opens (creating on first use) the PGlite database under `dir` ('memory://' for a throwaway one) and
 * serves it on a free loopback port. A lock file stops two processes from opening the same directory.
 */
export const startEmbeddedPostgres = async (dir: string, options: EmbeddedOptions = {}): Promise<EmbeddedPostgres> => {
  const inMemory = dir === 'memory://'
  const dataDir = inMemory ? dir : resolve(dir, 'pglite')
  let lockFile: string | undefined
  if (!inMemory) {
    mkdirSync(dataDir, { recursive: true })
    lockFile = join(resolve(dir), 'pglite.lock')
    try {
      const holder = Number(readFileSync(lockFile, 'utf8'))
      if (holder && holder !== process.pid && alive(holder))
        throw new Error(`NEXUS_DATA_DIR: ${resolve(dir)} is in use by process ${holder}; one process per data directory`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    writeFileSync(lockFile, String(process.pid))
  }
  const db = await PGlite.create(inMemory ? undefined : dataDir)
  const server = await servePglite(db, { host: '127.0.0.1', port: 0 })
  const url = `postgres://postgres@127.0.0.1:${server.port}/postgres`
  // One connection of its own, opened on first use: VACUUM cannot run in a transaction block, and a
  // connection of the host's pool could be in one.
  let maintenance: postgres.Sql | undefined
  let running: Promise<number> | undefined
  const vacuum = () =>
    (running ??= (async () => {
      const t0 = performance.now()
      maintenance ??= postgres(url, { max: 1, idle_timeout: 5, onnotice: () => undefined })
      await maintenance.unsafe('vacuum (analyze)')
      return performance.now() - t0
    })().finally(() => (running = undefined)))
  const every = options.vacuumEveryMs ?? VACUUM_EVERY_MS
  const timer =
    every > 0
      ? setInterval(() => {
          vacuum().then(
            (ms) => options.onVacuum?.({ ms }),
            (err) => options.onVacuum?.({ err }),
          )
        }, every).unref()
      : undefined
  return {
    url,
    dataDir,
    vacuum,
    async close() {
      clearInterval(timer)
      await running?.catch(() => undefined)
      await maintenance?.end({ timeout: 1 })
      await server.close()
      await db.close()
      if (lockFile) rmSync(lockFile, { force: true })
    },
  }
}
