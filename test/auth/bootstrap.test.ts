/**
 * `npm start` at first start with no users: the admin is created once, with a generated password shown
 * once outside the JSON logs; the second start creates nothing. Also a given NEXUS_ADMIN_PASSWORD.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { kekPath } from '../../local-runtime/kek.ts'
import { dropSchema } from '../support/harness.ts'
import { freePort, spawnHost, waitFor200 } from '../support/process.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bootstrap-'))
const schemas: string[] = []
afterAll(async () => {
  for (const s of schemas) await dropSchema(inject('databaseUrl'), s)
  rmSync(dataDir, { recursive: true, force: true })
})

const start = async (env: Record<string, string> = {}) => {
  const schema = env.NEXUS_DB_SCHEMA ?? `t_boot_${Math.random().toString(36).slice(2, 8)}`
  if (!schemas.includes(schema)) schemas.push(schema)
  const port = await freePort()
  const started = spawnHost({
    PORT: String(port),
    DATABASE_URL: inject('databaseUrl'),
    NEXUS_DB_SCHEMA: schema,
    NEXUS_DATA_DIR: dataDir,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    ...env,
  })
  await waitFor200(`http://127.0.0.1:${port}/health/ready`, 60_000, started)
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    started.child.kill('SIGTERM')
    expect(await started.exited).toBe(0)
    return started.output()
  }
  return { url, schema, stop, output: started.output }
}

const loginStatus = async (url: string, username: string, password: string) =>
  (await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })).status

describe('admin bootstrap', () => {
  it('generates a password, shows it once outside the JSON logs, and creates nothing on the next start', async () => {
    const first = await start()
    const out1 = await first.stop()
    const match = /created the admin user "admin" with this password:\s+(\S+)/.exec(out1)
    expect(match, out1).not.toBeNull()
    const password = match![1]!
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/)
    // Only in the banner: no JSON log line carries it.
    for (const line of out1.split('\n').filter((l) => l.startsWith('{'))) expect(line).not.toContain(password)
    expect(out1.split(password).length - 1).toBe(1)
    expect(statSync(kekPath(dataDir)).mode & 0o777).toBe(0o600)

    const second = await start({ NEXUS_DB_SCHEMA: first.schema })
    expect(await loginStatus(second.url, 'admin', password)).toBe(200)
    const out2 = await second.stop()
    expect(out2).not.toMatch(/created the admin user/)
    expect(out2).not.toMatch(/generated signing keys/)
  })

  it('uses NEXUS_ADMIN_USERNAME and NEXUS_ADMIN_PASSWORD when given, and prints no password', async () => {
    const given = await start({ NEXUS_ADMIN_USERNAME: 'root-operator', NEXUS_ADMIN_PASSWORD: 'chosen-by-the-operator' })
    expect(await loginStatus(given.url, 'root-operator', 'chosen-by-the-operator')).toBe(200)
    const out = await given.stop()
    expect(out).not.toContain('chosen-by-the-operator')
    expect(out).not.toMatch(/with this password/)
  })
})
