/** `npm run dev:workerd` as a user runs it, on the run's database (the real PostgreSQL in CI's second pass). */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { dropSchema } from '../support/harness.ts'
import { freePort, spawnHost, waitFor200 } from '../support/process.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'nexus-dev-workerd-'))
const schema = `t_wd_${Date.now()}`
afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true })
  await dropSchema(inject('databaseUrl'), schema)
})

describe('npm run dev:workerd', () => {
  it('serves /health and /metrics from workerd, then exits 0 on SIGTERM', { timeout: 150_000 }, async () => {
    const port = await freePort()
    const started = spawnHost(
      {
        PORT: String(port),
        DATABASE_URL: inject('databaseUrl'),
        NEXUS_DB_SCHEMA: schema,
        NEXUS_DATA_DIR: dataDir,
        OLLAMA_BASE_URL: 'http://127.0.0.1:9',
      },
      'local-runtime/workerd/main.ts',
    )
    const health = await waitFor200(`http://127.0.0.1:${port}/health`, 120_000, started)
    expect((await health.json()).checks.database.status).toBe('ok')
    // Metrics on workerd are per isolate: the first scrape is the metrics worker's first request.
    await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`)
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toMatch(/^# TYPE cortex_request_count counter$/m)
    started.child.kill('SIGTERM')
    expect(await started.exited).toBe(0)
  })
})
