/**
 * `npm start` as a user runs it: embedded defaults, reuse of the data on a second start, SIGTERM, bad env.
 * Embedded only, whatever DATABASE_URL says: `npm run dev:workerd` has a file of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { migrations } from '../../lib/db/migrations.ts'
import { freePort, spawnHost, spawnNpmStart, waitFor200 } from '../support/process.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'nexus-start-'))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

const logLines = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)

describe('npm start with nothing else running', () => {
  it('serves /health within 30 s on PGlite and the in-process bus, and drains on SIGTERM with exit 0', async () => {
    const port = await freePort()
    const started = spawnHost({ PORT: String(port), NEXUS_DATA_DIR: dataDir, OLLAMA_BASE_URL: 'http://127.0.0.1:9' })
    const res = await waitFor200(`http://127.0.0.1:${port}/health`, 30_000, started)
    const body = await res.json()
    expect(body.checks.database).toMatchObject({ status: 'ok', driver: 'pglite' })
    expect(body.checks.redis).toMatchObject({ status: 'ok', driver: 'memory' })
    started.child.kill('SIGTERM')
    expect(await started.exited).toBe(0)
    const lines = logLines(started.output())
    expect(lines.find((l) => l.msg === 'migrations applied')).toMatchObject({ applied: migrations.map((m) => m.version) })
    expect(lines.some((l) => l.msg === 'stopped')).toBe(true)
  })

  it('`npm start` itself: SIGTERM to npm reaches the host, which drains and exits 0, leaving no process behind', { timeout: 120_000 }, async () => {
    // npm runs the script through `sh -c` and signals that shell; without `exec` in the script the shell
    // died and the host lived on, orphaned, still serving (and the tsx CLI before it could SIGKILL it).
    const port = await freePort()
    const npm = spawnNpmStart({ PORT: String(port), NEXUS_DATA_DIR: mkdtempSync(join(dataDir, 'npm-')), OLLAMA_BASE_URL: 'http://127.0.0.1:9' })
    await waitFor200(`http://127.0.0.1:${port}/health/ready`, 60_000, npm)
    npm.child.kill('SIGTERM')
    expect(await npm.exited).toBe(0)
    expect(logLines(npm.output()).some((l) => l.msg === 'stopped')).toBe(true)
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow() // nothing listens any more
  })

  it('reuses the data on a second start without migrating again', { timeout: 120_000 }, async () => {
    const port = await freePort()
    const started = spawnHost({ PORT: String(port), NEXUS_DATA_DIR: dataDir, OLLAMA_BASE_URL: 'http://127.0.0.1:9' })
    await waitFor200(`http://127.0.0.1:${port}/health/ready`, 30_000, started)
    started.child.kill('SIGTERM')
    expect(await started.exited).toBe(0)
    const lines = logLines(started.output())
    expect(lines.find((l) => l.msg === 'schema is current')).toMatchObject({ applied: [] })
    expect(lines.some((l) => l.msg === 'migrations applied')).toBe(false)
  })

  it('finishes a request in flight when SIGTERM arrives, then exits 0', async () => {
    // A slow "Ollama" keeps GET /health busy for ~800 ms: long enough to signal mid-request.
    const slow = createServer((_req, res) => setTimeout(() => res.end('{"version":"0.0.0"}'), 800))
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
    const ollama = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`
    const port = await freePort()
    // The embedded data of the first test: PGlite starts without an initdb.
    const started = spawnHost({ PORT: String(port), NEXUS_DATA_DIR: dataDir, OLLAMA_BASE_URL: ollama })
    await waitFor200(`http://127.0.0.1:${port}/health/live`, 30_000, started)
    const inFlight = fetch(`http://127.0.0.1:${port}/health`)
    await new Promise((r) => setTimeout(r, 200))
    started.child.kill('SIGTERM')
    const res = await inFlight
    expect(res.status).toBe(200)
    expect((await res.json()).checks.ollama.status).toBe('ok')
    expect(await started.exited).toBe(0)
    await new Promise((r) => slow.close(r))
  })

  it.each([
    [{ PORT: 'abc' }, /^nexus: cannot start: PORT: must be a whole number$/m],
    [{ OLLAMA_BASE_URL: 'https://api.openai.com' }, /^nexus: cannot start: OLLAMA_BASE_URL: upstream "api.openai.com" is not loopback/m],
    [{ DATABASE_URL: 'mysql://x' }, /^nexus: cannot start: DATABASE_URL: must be a PostgreSQL URL/m],
  ])('stops at once on bad env %o with one line naming the variable', async (env, line) => {
    const started = spawnHost({ NEXUS_DATA_DIR: dataDir, ...env })
    expect(await started.exited).toBe(1)
    expect(started.output()).toMatch(line)
    expect(started.output()).not.toMatch(/\n\s+at /) // no stack trace
  })
})
