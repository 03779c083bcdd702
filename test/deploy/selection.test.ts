/** The function set of a container: NEXUS_SERVICE / NEXUS_FUNCTION in the environment, or the flags (which win). */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { functions } from '../../workers.config.ts'
import { dropSchema } from '../support/harness.ts'
import { freePort, spawnHost, waitFor200 } from '../support/process.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'nexus-select-'))
const schema = `t_select_${Date.now()}`
afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true })
  await dropSchema(inject('databaseUrl'), schema)
})

const base = () => ({
  DATABASE_URL: inject('databaseUrl'),
  NEXUS_DB_SCHEMA: schema,
  NEXUS_BUS_PREFIX: `${schema}:`,
  NEXUS_DATA_DIR: dataDir,
  NEXUS_ADMIN_PASSWORD: 'select-admin-password',
  OLLAMA_BASE_URL: 'http://127.0.0.1:9',
})

const served = (output: string) => {
  const line = output.split('\n').find((l) => l.includes('"NEXUS listening"'))
  return (JSON.parse(line!) as { functions: string[] }).functions
}

describe('choosing the functions by environment', () => {
  it('serves the groups of NEXUS_SERVICE plus the functions of NEXUS_FUNCTION', { timeout: 60_000 }, async () => {
    const port = await freePort()
    const host = spawnHost({ ...base(), PORT: String(port), NEXUS_SERVICE: 'auth, ops', NEXUS_FUNCTION: 'cortex-agents' })
    await waitFor200(`http://127.0.0.1:${port}/health/ready`, 45_000, host)
    host.child.kill('SIGTERM')
    expect(await host.exited).toBe(0)
    const want = functions.filter((f) => f.group === 'auth' || f.group === 'ops' || f.name === 'cortex-agents').map((f) => f.name)
    expect(served(host.output()).sort()).toEqual(want.sort())
  })

  it('lets the flags win over the environment', { timeout: 60_000 }, async () => {
    const port = await freePort()
    const host = spawnHost({ ...base(), PORT: String(port), NEXUS_SERVICE: 'gateway' }, 'local-runtime/node/main.ts', ['--function', 'health'])
    await waitFor200(`http://127.0.0.1:${port}/health/live`, 45_000, host)
    host.child.kill('SIGTERM')
    expect(await host.exited).toBe(0)
    expect(served(host.output())).toEqual(['health'])
  })

  it.each([
    [{ NEXUS_SERVICE: 'cortex,nope' }, [], /^nexus: cannot start: NEXUS_SERVICE: unknown service group "nope" \(one of [a-z, ]+\)$/m],
    [{ NEXUS_FUNCTION: 'nope' }, [], /^nexus: cannot start: NEXUS_FUNCTION: unknown function "nope"/m],
    [{}, ['--service', 'nope'], /^nexus: cannot start: --service: unknown service group "nope"/m],
    [{}, ['--bogus'], /^nexus: cannot start: Unknown option '--bogus'/m],
  ])('stops at once on %o %o with one line naming where the bad name came from', async (env, args, line) => {
    const host = spawnHost({ ...base(), ...env }, 'local-runtime/node/main.ts', args)
    expect(await host.exited).toBe(1)
    expect(host.output()).toMatch(line)
    expect(host.output()).not.toMatch(/\n\s+at /)
  })
})
