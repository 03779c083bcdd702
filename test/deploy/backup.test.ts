/**
 * scripts/backup.sh and scripts/restore.sh, round trip on real PostgreSQL: data made through a running
 * host (users, an agent, a completed command, an event, a rotated signing key) is backed up, the schema
 * dropped and the key-encryption key gone (a new machine), restored, and a new host on it serves the same
 * data, verifies the tokens issued before, and logs in. Needs DATABASE_URL (pg_dump cannot read the
 * embedded PGlite): CI's real-server suite runs it.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { bearer, createUser, dropSchema, login, loginAs, startTestHost, type TestHost } from '../support/harness.ts'

const root = join(import.meta.dirname, '..', '..')
const real = Boolean(process.env.DATABASE_URL)
if (real && process.env.CI) {
  const missing = ['pg_dump', 'pg_restore', 'psql'].filter((t) => spawnSync(t, ['--version']).status !== 0)
  if (missing.length) throw new Error(`CI needs ${missing.join(', ')} (postgresql-client)`)
}

const run = (script: string, args: string[], env: Record<string, string>) =>
  spawnSync('bash', [join(root, 'scripts', script), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    encoding: 'utf8',
  })

describe.skipIf(!real)('backup.sh and restore.sh round trip', () => {
  const work = mkdtempSync(join(tmpdir(), 'nexus-backup-'))
  const schema = `t_backup_${Date.now()}`
  const oldData = join(work, 'old-data')
  const newData = join(work, 'new-data')
  const out = join(work, 'backup')
  let host: TestHost | undefined
  afterAll(async () => {
    await host?.close()
    await dropSchema(process.env.DATABASE_URL!, schema)
    rmSync(work, { recursive: true, force: true })
  })

  it('restores users, commands, events and every signing key, so old tokens verify and logins work', { timeout: 180_000 }, async () => {
    // 1. A deployment with data, its KEK in its data directory (no NEXUS_KEY_ENCRYPTION_KEY set).
    const env = { NEXUS_DB_SCHEMA: schema, NEXUS_DATA_DIR: oldData }
    const a = await startTestHost('node', { env, keepData: true, groups: ['auth', 'cortex', 'ops'] })
    const operator = await createUser(a, ['operator'])
    const agentUser = await createUser(a, ['agent'])
    const adminBefore = await loginAs(a, 'admin')
    const agentToken = await login(a, agentUser.username, agentUser.password)
    const operatorToken = await login(a, operator.username, operator.password)
    expect((await a.json('POST', '/api/v1/agents/register', { agent_id: 'backup-agent', capabilities: ['x'] }, bearer(agentToken))).status).toBe(201)
    const cmd = await a.json('POST', '/api/v1/commands', { text: 'survive a restore', agent_id: 'backup-agent' }, bearer(operatorToken))
    const claimed = await a.json('POST', '/api/v1/agents/backup-agent/commands/claim', undefined, bearer(agentToken))
    expect(claimed.body.command_id).toBe(cmd.body.command_id)
    const done = await a.json('POST', `/api/v1/commands/${cmd.body.command_id}/complete`, { result: 'done before the backup', data: { n: 1 }, lease_token: claimed.body.lease_token }, bearer(agentToken))
    expect(done.status).toBe(200)
    const event = await a.json('POST', '/api/v1/events', { type: 'backup.marker', payload: { at: 'before' } }, bearer(operatorToken))
    expect(event.status).toBe(201)
    const jwksBefore = (await a.json('GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid)
    const rotated = await a.json('POST', '/api/v1/auth/keys/rotate', undefined, bearer(adminBefore))
    expect(rotated.status).toBe(201)
    const operatorAfter = await login(a, operator.username, operator.password) // signed with the new key
    await a.close()
    expect(existsSync(join(oldData, 'auth', 'kek'))).toBe(true)

    // 2. Back up.
    const dbEnv = { DATABASE_URL: process.env.DATABASE_URL!, NEXUS_DB_SCHEMA: schema }
    const backup = run('backup.sh', [out], { ...dbEnv, NEXUS_DATA_DIR: oldData })
    expect(backup.status, backup.stderr).toBe(0)
    expect(backup.stdout).toMatch(new RegExp(`schema ${schema}`))
    for (const f of [`${schema}.dump`, 'kek', 'MANIFEST', 'SHA256SUMS']) expect(existsSync(join(out, f)), f).toBe(true)
    expect(statSync(join(out, 'kek')).mode & 0o077).toBe(0)
    expect(readFileSync(join(out, 'kek'), 'utf8')).toBe(readFileSync(join(oldData, 'auth', 'kek'), 'utf8'))
    expect(`${backup.stdout}${backup.stderr}`).not.toContain(new URL(process.env.DATABASE_URL!).password || '\u0000')

    // 3. Lose everything: the schema and the machine's data directory.
    await dropSchema(process.env.DATABASE_URL!, schema)
    rmSync(oldData, { recursive: true, force: true })

    // 4. Restore onto a new data directory; a second restore over it is refused without --force.
    const restore = run('restore.sh', [out], { ...dbEnv, NEXUS_DATA_DIR: newData })
    expect(restore.status, restore.stderr).toBe(0)
    expect(readFileSync(join(newData, 'auth', 'kek'), 'utf8')).toBe(readFileSync(join(out, 'kek'), 'utf8'))
    const again = run('restore.sh', [out], { ...dbEnv, NEXUS_DATA_DIR: newData })
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/already exists.*--force/)

    // 5. A new host on the restored data.
    host = await startTestHost('node', { env: { NEXUS_DB_SCHEMA: schema, NEXUS_DATA_DIR: newData }, keepData: true, groups: ['auth', 'cortex', 'ops'] })
    for (const token of [adminBefore, operatorToken, operatorAfter]) {
      const v = await host.json('POST', '/api/v1/auth/verify', { token })
      expect(v.status, v.text).toBe(200)
    }
    const jwksAfter = (await host.json('GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid)
    expect(jwksAfter).toEqual(expect.arrayContaining([...jwksBefore, rotated.body.kid]))
    const fresh = await login(host, operator.username, operator.password)
    const got = await host.json('GET', `/api/v1/commands/${cmd.body.command_id}`, undefined, bearer(fresh))
    expect(got.body).toMatchObject({ status: 'completed', result: 'done before the backup', data: { n: 1 }, agent_id: 'backup-agent' })
    const agents = await host.json('GET', '/api/v1/agents', undefined, bearer(fresh))
    expect(agents.body.agents.map((x: { agent_id: string }) => x.agent_id)).toContain('backup-agent')
    const events = await host.json('GET', '/api/v1/events?type=backup.marker', undefined, bearer(fresh))
    expect(events.body.events.map((e: { payload: unknown }) => e.payload)).toEqual([{ at: 'before' }])
    // New tokens are signed by the rotated key, and verify.
    const header = JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString()) as { kid: string }
    expect(header.kid).toBe(rotated.body.kid)
  })

  it('refuses a backup that fails its checksums, and a restore without a database name', () => {
    const broken = join(work, 'broken')
    spawnSync('cp', ['-r', out, broken])
    const dump = join(broken, `${schema}.dump`)
    const bytes = readFileSync(dump)
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff
    writeFileSync(dump, bytes)
    const res = run('restore.sh', [broken, '--force'], { DATABASE_URL: process.env.DATABASE_URL!, NEXUS_DATA_DIR: newData })
    expect(res.status).toBe(1)
    expect(res.stderr).toMatch(/fails its checksums/)
    const noDb = run('restore.sh', [out], { DATABASE_URL: 'postgres://u:p@127.0.0.1:5432' })
    expect(noDb.status).toBe(2)
    expect(noDb.stderr).toMatch(/names no database/)
  })
})

describe('pg-env.sh', () => {
  it('turns a postgres URL into PG* variables, decoding the password, so it never sits in argv', () => {
    const res = spawnSync(
      'bash',
      ['-c', `source scripts/pg-env.sh && pg_env_from_url "$1" && printf '%s|' "$PGHOST" "$PGPORT" "$PGUSER" "$PGPASSWORD" "$PGDATABASE" "$PGSSLMODE"`, '_', 'postgresql://nexus:p%40ss%3Aw0rd@db.internal:6543/nexus_prod?sslmode=require'],
      { cwd: root, encoding: 'utf8' },
    )
    expect(res.stdout).toBe('db.internal|6543|nexus|p@ss:w0rd|nexus_prod|require|')
    const v6 = spawnSync('bash', ['-c', `source scripts/pg-env.sh && pg_env_from_url "$1" && printf '%s|' "$PGHOST" "$PGPORT"`, '_', 'postgres://u@[::1]:5433/db'], { cwd: root, encoding: 'utf8' })
    expect(v6.stdout).toBe('::1|5433|')
    const bad = spawnSync('bash', ['-c', 'source scripts/pg-env.sh && pg_env_from_url "mysql://x"'], { cwd: root, encoding: 'utf8' })
    expect(bad.status).toBe(1)
  })
})
