/** Embedded PostgreSQL: PGlite kept on disk, served over the wire protocol so the same postgres.js code runs on it. */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { servePglite } from './pglite-server.ts'

export interface EmbeddedPostgres {
  /** A postgres:// URL on 127.0.0.1 for this process only. */
  url: string
  dataDir: string
  close(): Promise<void>
}

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
export const startEmbeddedPostgres = async (dir: string): Promise<EmbeddedPostgres> => {
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
  return {
    url: `postgres://postgres@127.0.0.1:${server.port}/postgres`,
    dataDir,
    async close() {
      await server.close()
      await db.close()
      if (lockFile) rmSync(lockFile, { force: true })
    },
  }
}
