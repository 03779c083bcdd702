/**
 * Horizontal scale on one machine: three Node processes of auth+cortex behind a real nginx (Debian's),
 * on the real PostgreSQL and Redis, as the Deployment runs them. A WebSocket client on one process sees
 * commands completed through the others; 300 commands claimed concurrently through nginx are each
 * claimed once; and a process killed mid-run (SIGKILL) loses nothing: every command ends completed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NGINX_MAPS, NGINX_PROXY_SETTINGS, nginxLocations } from '../../scripts/gen-deploy.ts'
import { dropSchema } from '../support/harness.ts'
import { openEventsWs } from '../support/live.ts'
import { freePort, spawnHost, waitFor200, type Started } from '../support/process.ts'

const hasNginx = spawnSync('nginx', ['-v']).status === 0
const real = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL)
if (real && process.env.CI && !hasNginx) throw new Error('CI must install nginx (nginx-light) for the replica test')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const uid = () => Math.random().toString(36).slice(2, 8)

describe.skipIf(!real || !hasNginx)('three cortex processes behind nginx', () => {
  const work = mkdtempSync(join(tmpdir(), 'nexus-replicas-'))
  const schema = `t_replicas_${uid()}`
  const replicas: Array<{ url: string; started: Started }> = []
  let nginx: ChildProcess | undefined
  let nginxExited: Promise<number | null> | undefined
  let proxy = ''
  const admin = 'replicas-admin-password'

  const env = {
    DATABASE_URL: process.env.DATABASE_URL!,
    REDIS_URL: process.env.REDIS_URL!,
    NEXUS_DB_SCHEMA: schema,
    NEXUS_BUS_PREFIX: `${schema}:`,
    NEXUS_DATA_DIR: join(work, 'data'),
    // As in the Deployment: one key-encryption key for every replica.
    NEXUS_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 5).toString('base64'),
    NEXUS_ADMIN_PASSWORD: admin,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
  }

  const call = async (base: string, method: string, path: string, token?: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, asserted by the callers
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any, text }
  }
  /** Retries what a client would retry: a proxy error (502/504) or a refused connection, while a replica is gone. */
  const retrying = async (method: string, path: string, token?: string, body?: unknown) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await call(proxy, method, path, token, body)
        if ((res.status !== 502 && res.status !== 504) || attempt > 50) return res
      } catch (err) {
        if (attempt > 50) throw err
      }
      await sleep(100)
    }
  }

  beforeAll(async () => {
    // Three replicas started at once: migrations and key bootstrap serialize on advisory locks.
    const ports = [await freePort(), await freePort(), await freePort()]
    for (const port of ports)
      replicas.push({
        url: `http://127.0.0.1:${port}`,
        started: spawnHost({ ...env, PORT: String(port) }, 'local-runtime/node/main.ts', ['--service', 'auth,cortex,ops']),
      })
    await Promise.all(replicas.map((r) => waitFor200(`${r.url}/health/ready`, 60_000, r.started)))

    const port = await freePort()
    proxy = `http://127.0.0.1:${port}`
    for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(work, 'nginx', d), { recursive: true })
    // As root (CI), nginx's workers run as nobody: they must be able to write their temporary files.
    chmodSync(work, 0o755)
    for (const d of ['nginx', 'nginx/client_body', 'nginx/proxy', 'nginx/fastcgi', 'nginx/uwsgi', 'nginx/scgi']) chmodSync(join(work, d), 0o777)
    const t = join(work, 'nginx')
    writeFileSync(
      join(t, 'nginx.conf'),
      [
        'worker_processes 1;',
        'events { worker_connections 1024; }',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${t}/client_body; proxy_temp_path ${t}/proxy; fastcgi_temp_path ${t}/fastcgi;`,
        `  uwsgi_temp_path ${t}/uwsgi; scgi_temp_path ${t}/scgi;`,
        ...NGINX_MAPS.map((l) => `  ${l}`),
        '  upstream nexus_replicas {',
        '    least_conn;',
        ...replicas.map((r) => `    server ${new URL(r.url).host} max_fails=1 fail_timeout=5s;`),
        '    keepalive 32;',
        '  }',
        '  server {',
        `    listen 127.0.0.1:${port};`,
        ...NGINX_PROXY_SETTINGS.map((l) => `    ${l}`),
        // The compose proxy's routing, every group sent to the replicas.
        ...nginxLocations('cortex', () => 'nexus_replicas').map((l) => `    ${l}`),
        '  }',
        '}',
        '',
      ].join('\n'),
    )
    nginx = spawn('nginx', ['-p', t, '-e', `${t}/error.log`, '-c', join(t, 'nginx.conf'), '-g', `daemon off; pid ${t}/nginx.pid;`], { stdio: 'ignore' })
    nginxExited = new Promise((r) => nginx!.on('exit', (code) => r(code)))
    await waitFor200(`${proxy}/health/live`, 15_000)
  }, 120_000)

  afterAll(async () => {
    nginx?.kill('SIGQUIT')
    await nginxExited
    for (const r of replicas) if (r.started.child.exitCode === null && r.started.child.signalCode === null) r.started.child.kill('SIGTERM')
    await Promise.all(replicas.map((r) => r.started.exited))
    await dropSchema(process.env.DATABASE_URL!, schema)
    rmSync(work, { recursive: true, force: true })
  })

  const session = async () => {
    const adminToken = (await call(proxy, 'POST', '/api/v1/auth/login', undefined, { username: 'admin', password: admin })).body.access_token as string
    // One operator and one agent user, through the proxy (so through whichever replica nginx picks).
    const users: Record<string, string> = {}
    for (const role of ['operator', 'agent']) {
      const username = `${role}-${uid()}`
      const password = `pw-${uid()}-${uid()}`
      expect((await call(proxy, 'POST', '/api/v1/auth/users', adminToken, { username, password, roles: [role] })).status).toBe(201)
      users[role] = (await call(proxy, 'POST', '/api/v1/auth/login', undefined, { username, password })).body.access_token
    }
    const agentId = `rep-${uid()}`
    expect((await call(proxy, 'POST', '/api/v1/agents/register', users.agent, { agent_id: agentId })).status).toBe(201)
    return { operator: users.operator!, agent: users.agent!, agentId }
  }

  it('spreads requests over the three replicas (nginx least_conn)', async () => {
    // Each replica's metrics count only the requests it served: all three serve some.
    await Promise.all(Array.from({ length: 60 }, () => call(proxy, 'GET', '/health/live')))
    const counts = await Promise.all(
      replicas.map(async (r) => {
        const text = await (await fetch(`${r.url}/metrics`)).text()
        return [...text.matchAll(/^cortex_request_count\{[^}]*route="\/health\/live"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0)
      }),
    )
    expect(counts.every((n) => n > 0), String(counts)).toBe(true)
  })

  it('shows a WebSocket client on one replica the commands completed through the others', { timeout: 60_000 }, async () => {
    const { operator, agent, agentId } = await session()
    const ws = await openEventsWs(replicas[0]!.url, operator, 'type=command_completed')
    try {
      const ids: string[] = []
      for (let i = 0; i < 20; i++) {
        const created = await call(proxy, 'POST', '/api/v1/commands', operator, { text: `seen ${i}`, agent_id: agentId })
        expect(created.status).toBe(201)
        ids.push(created.body.command_id)
      }
      // Claimed and completed on replicas 2 and 3 directly, never on the one the client is connected to.
      for (const [i, id] of ids.entries()) {
        const via = replicas[1 + (i % 2)]!.url
        const claimed = await call(via, 'POST', `/api/v1/agents/${agentId}/commands/claim`, agent)
        expect(claimed.status).toBe(200)
        const done = await call(via, 'POST', `/api/v1/commands/${claimed.body.command_id}/complete`, agent, { result: 'ok', lease_token: claimed.body.lease_token })
        expect(done.status).toBe(200)
      }
      const events = await ws.waitFor(ids.length, 20_000)
      expect(events.map((e) => e.command_id).sort()).toEqual([...ids].sort())
      expect(events.every((e) => e.type === 'command_completed')).toBe(true)
      // Ids only grow, across processes.
      expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b))
    } finally {
      await ws.close()
    }
  })

  it('claims each of 300 commands exactly once, with 9 workers claiming through nginx at once', { timeout: 90_000 }, async () => {
    const { operator, agent, agentId } = await session()
    const total = 300
    const created = new Set<string>()
    await Promise.all(
      Array.from({ length: 10 }, async (_, w) => {
        for (let i = w; i < total; i += 10) {
          const res = await call(proxy, 'POST', '/api/v1/commands', operator, { text: `once ${i}`, agent_id: agentId })
          expect(res.status).toBe(201)
          created.add(res.body.command_id)
        }
      }),
    )
    const seen = new Map<string, number>()
    await Promise.all(
      Array.from({ length: 9 }, async () => {
        for (;;) {
          const res = await call(proxy, 'POST', `/api/v1/agents/${agentId}/commands/claim?lease=300`, agent)
          if (res.status === 204) return
          expect(res.status, res.text).toBe(200)
          seen.set(res.body.command_id, (seen.get(res.body.command_id) ?? 0) + 1)
        }
      }),
    )
    expect(seen.size).toBe(total)
    expect([...seen.keys()].every((id) => created.has(id))).toBe(true)
    expect([...seen.entries()].filter(([, n]) => n !== 1)).toEqual([])
  })

  it('loses nothing when one replica is killed mid-run: every command ends completed', { timeout: 120_000 }, async () => {
    const { operator, agent, agentId } = await session()
    const total = 200
    const ids: string[] = []
    for (let i = 0; i < total; i += 20)
      ids.push(
        ...(await Promise.all(
          Array.from({ length: 20 }, async (_, j) => (await retrying('POST', '/api/v1/commands', operator, { text: `kill ${i + j}`, agent_id: agentId })).body.command_id as string),
        )),
      )
    const completed = new Set<string>()
    let killed = false
    let orphan = ''
    const victim = replicas[2]!
    const worker = async () => {
      while (completed.size < total) {
        // A short lease: what a dead replica's client held comes back quickly.
        const claimed = await retrying('POST', `/api/v1/agents/${agentId}/commands/claim?lease=2&wait=1`, agent)
        if (claimed.status === 204) continue
        if (claimed.status !== 200) continue
        if (!killed && completed.size >= 40) {
          killed = true
          // The victim hands out one more command, whose client then dies with it: only its lease can bring it back.
          const last = await call(victim.url, 'POST', `/api/v1/agents/${agentId}/commands/claim?lease=2`, agent)
          expect(last.status).toBe(200)
          orphan = last.body.command_id
          victim.started.child.kill('SIGKILL')
        }
        const done = await retrying('POST', `/api/v1/commands/${claimed.body.command_id}/complete`, agent, { result: 'ok', lease_token: claimed.body.lease_token })
        // 409: the lease ran out meanwhile (another claim will finish it), or an earlier attempt whose answer
        // was lost with the killed replica already completed it. Either way the final check below decides.
        if (done.status === 200 || (done.status === 409 && done.body?.error?.code === 'ALREADY_FINISHED')) completed.add(claimed.body.command_id)
        else expect([409], done.text).toContain(done.status)
      }
    }
    await Promise.all(Array.from({ length: 6 }, worker))
    expect(killed).toBe(true)
    expect(await victim.started.exited).toBeNull() // killed by the signal, not exited
    expect(victim.started.child.signalCode).toBe('SIGKILL')
    // Through the survivors: every command completed, none queued, dispatched or failed.
    const statuses = new Map<string, number>()
    for (const id of ids) {
      const got = await retrying('GET', `/api/v1/commands/${id}`, operator)
      statuses.set(got.body.status, (statuses.get(got.body.status) ?? 0) + 1)
    }
    expect(Object.fromEntries(statuses)).toEqual({ completed: total })
    const orphaned = await retrying('GET', `/api/v1/commands/${orphan}`, operator)
    expect(orphaned.body).toMatchObject({ status: 'completed' })
    expect(orphaned.body.attempts).toBeGreaterThanOrEqual(2) // claimed again after its lease ran out
    const logs = replicas.map((r) => r.started.output()).join('\n')
    expect(logs).not.toContain(admin)
  })
})
