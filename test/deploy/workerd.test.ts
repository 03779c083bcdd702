/**
 * A function deployed alone on plain workerd (not miniflare), as the `workerd` image runs it: its
 * committed config (deploy/workerd/<fn>.capnp) and its `npm run build:workerd` bundle, every binding
 * from the environment, served by the workerd binary itself.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { functions } from '../../workers.config.ts'
import { buildFunction } from '../../local-runtime/workerd/build.ts'
import { workerdConfig } from '../../scripts/gen-deploy.ts'
import { dropSchema } from '../support/harness.ts'
import { freePort, waitFor200 } from '../support/process.ts'

const root = join(import.meta.dirname, '..', '..')
const workerdBin = join(root, 'node_modules', '.bin', 'workerd')

describe('a function alone on workerd, from deploy/workerd/<function>.capnp', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-workerd-'))
  const schema = `t_wd_${Date.now()}`
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true })
    await dropSchema(inject('databaseUrl'), schema)
  })

  it('serves health with its bindings from the environment, and nothing else', { timeout: 90_000 }, async () => {
    const fn = functions.find((f) => f.name === 'health')!
    const committed = readFileSync(join(root, 'deploy', 'workerd', 'health.capnp'), 'utf8')
    expect(committed).toBe(workerdConfig(fn, '../../.build/workerd/health.mjs'))
    // The same layout as the image: deploy/workerd/health.capnp embeds ../../.build/workerd/health.mjs.
    mkdirSync(join(dir, 'deploy', 'workerd'), { recursive: true })
    mkdirSync(join(dir, '.build', 'workerd'), { recursive: true })
    writeFileSync(join(dir, 'deploy', 'workerd', 'health.capnp'), committed)
    writeFileSync(join(dir, '.build', 'workerd', 'health.mjs'), (await buildFunction(fn)).code)

    const port = await freePort()
    const child = spawn(workerdBin, ['serve', 'deploy/workerd/health.capnp', '--socket-addr', `http=127.0.0.1:${port}`], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: inject('databaseUrl'),
        NEXUS_DB_SCHEMA: schema,
        NEXUS_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64'),
        OLLAMA_BASE_URL: 'http://127.0.0.1:9',
        ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, NEXUS_BUS_PREFIX: `${schema}:` } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      await waitFor200(`http://127.0.0.1:${port}/health/live`, 30_000, { child, output: () => out, exited })
      const health = await fetch(`http://127.0.0.1:${port}/health`)
      const body = (await health.json()) as { checks: Record<string, { status: string; driver?: string }> }
      expect(health.status, out).toBe(200)
      expect(body.checks.database).toMatchObject({ status: 'ok', driver: 'postgres' })
      expect(body.checks.redis!.status).toBe('ok')
      expect(body.checks.ollama!.status).toBe('error') // port 9: nothing there, and the check says so
      // Only this function's routes: anything else is a 404 in the error envelope.
      const other = await fetch(`http://127.0.0.1:${port}/api/v1/commands`)
      expect(other.status).toBe(404)
      expect(((await other.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error')
    } finally {
      child.kill('SIGTERM')
      await exited
    }
  })
})
