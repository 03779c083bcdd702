/**
 * Once per test run: with no DATABASE_URL, one embedded PostgreSQL (PGlite, in memory) served over
 * the wire protocol for every test file; each file then works in a schema of its own.
 */
import type { TestProject } from 'vitest/node'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../local-runtime/node/pglite.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
    embeddedDatabase: boolean
  }
}

let embedded: EmbeddedPostgres | undefined

export default async function setup(project: TestProject) {
  const given = process.env.DATABASE_URL
  if (given) {
    project.provide('databaseUrl', given)
    project.provide('embeddedDatabase', false)
  } else {
    embedded = await startEmbeddedPostgres('memory://')
    project.provide('databaseUrl', embedded.url)
    project.provide('embeddedDatabase', true)
  }
  return async () => {
    await embedded?.close()
  }
}
