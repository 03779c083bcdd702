/** `npm run auth:rotate` as an operator runs it: against PostgreSQL beside a running server, and on embedded data. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnHost } from '../support/process.ts'
import { bearer, login, startTestHost, TEST_ADMIN_PASSWORD, type TestHost } from '../support/harness.ts'

const rotate = async (env: Record<string, string>) => {
  const run = spawnHost(env, 'local-runtime/auth-rotate.ts')
  const code = await run.exited
  const line = run.output().split('\n').find((l) => l.startsWith('{"kid"'))
  return { code, result: line ? (JSON.parse(line) as { kid: string; previous: string | null }) : undefined, output: run.output() }
}

describe('npm run auth:rotate', () => {
  let host: TestHost
  beforeAll(async () => {
    host = await startTestHost('node', { groups: ['auth'] })
  })
  afterAll(async () => {
    await host?.close()
  })

  it('rotates the keys of a running deployment; its next token carries the new kid, older tokens keep working', async () => {
    const before = await login(host, 'admin', TEST_ADMIN_PASSWORD)
    const { code, result, output } = await rotate({
      DATABASE_URL: host.env.DATABASE_URL!,
      NEXUS_DB_SCHEMA: host.schema,
      NEXUS_DATA_DIR: host.env.NEXUS_DATA_DIR!,
    })
    expect(code, output).toBe(0)
    expect(result!.previous).toBe(decodeProtectedHeader(before).kid)
    const after = await login(host, 'admin', TEST_ADMIN_PASSWORD)
    expect(decodeProtectedHeader(after).kid).toBe(result!.kid)
    for (const token of [before, after])
      expect((await host.json('GET', '/api/v1/auth/me', undefined, bearer(token))).status).toBe(200)
    expect(output).not.toMatch(/"d":|PRIVATE/)
  })

  it('works on embedded data with no server, creating the first keys when there are none', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nexus-rotate-'))
    try {
      const first = await rotate({ NEXUS_DATA_DIR: dataDir })
      expect(first.code, first.output).toBe(0)
      const second = await rotate({ NEXUS_DATA_DIR: dataDir })
      expect(second.code, second.output).toBe(0)
      expect(second.result!.previous).toBe(first.result!.kid)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('stops with one line on a bad environment', async () => {
    const bad = await rotate({ NEXUS_KEY_ENCRYPTION_KEY: 'short' })
    expect(bad.code).toBe(1)
    expect(bad.output).toMatch(/^nexus auth:rotate: NEXUS_KEY_ENCRYPTION_KEY: must be 32 random bytes/m)
  })
})
