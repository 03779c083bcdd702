/**
 * What a database connection per request costs on workerd, and what a session-mode PgBouncer in front of
 * PostgreSQL gives back. Three hosts on the same real PostgreSQL and Redis, one after another: the Node
 * host (one shared pool: the baseline), workerd straight to PostgreSQL, and workerd through PgBouncer
 * (started here by scripts/pgbouncer.sh). For each: an authenticated `GET /api/v1/commands?limit=1` (a
 * token check and one query) and a command creation, one at a time (p50/p99), then the GET from 8
 * clients at once for a fixed time (requests/s).
 *
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench:workerd-db [-- --requests 200 --seconds 5]
 *
 * Needs a real PostgreSQL (embedded PGlite has no server processes to start) and the pgbouncer binary
 * (or NEXUS_BENCH_POOLED_URL). Loopback only, bounded in count and time.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { startNodeHost } from '../local-runtime/node/host.ts'
import { startWorkerdHost } from '../local-runtime/workerd/host.ts'
import { freePort } from '../test/support/process.ts'

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '200' }, seconds: { type: 'string', default: '5' } },
})
const REQUESTS = Math.max(20, Math.min(2_000, Number(values.requests)))
const SECONDS = Math.max(1, Math.min(30, Number(values.seconds)))
const CONCURRENCY = 8
const PASSWORD = 'bench-admin-password'

const databaseUrl = process.env.DATABASE_URL
if (!databaseUrl) {
  console.error('bench:workerd-db needs DATABASE_URL (a real PostgreSQL); with embedded PGlite there is no connection cost to show')
  process.exit(2)
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!
}
const agent = new http.Agent({ keepAlive: true })
const request = (url: string, method: string, headers: Record<string, string>, body?: string) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { ...headers, 'content-type': 'application/json' } : headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', reject)
    req.end(body)
  })

interface Row {
  name: string
  get: number[]
  create: number[]
  rps: number
}

const measure = async (name: string, start: () => Promise<{ url: string; close(): Promise<void> }>): Promise<Row> => {
  const host = await start()
  try {
    const login = await request(`${host.url}/api/v1/auth/login`, 'POST', {}, JSON.stringify({ username: 'admin', password: PASSWORD }))
    if (login.status !== 200) throw new Error(`${name}: login answered ${login.status}: ${login.text}`)
    const auth = { authorization: `Bearer ${JSON.parse(login.text).access_token}` }
    const agentId = `bench-${Date.now()}`
    const reg = await request(`${host.url}/api/v1/agents/register`, 'POST', auth, JSON.stringify({ agent_id: agentId }))
    if (reg.status !== 201) throw new Error(`${name}: register answered ${reg.status}: ${reg.text}`)
    const list = `${host.url}/api/v1/commands?limit=1`
    const timed = async (f: () => Promise<{ status: number; text: string }>, ok: number) => {
      const t = performance.now()
      const res = await f()
      if (res.status !== ok) throw new Error(`${name}: answered ${res.status}: ${res.text}`)
      return performance.now() - t
    }
    for (let i = 0; i < 20; i++) await timed(() => request(list, 'GET', auth), 200) // warm-up
    const get: number[] = []
    for (let i = 0; i < REQUESTS; i++) get.push(await timed(() => request(list, 'GET', auth), 200))
    const create: number[] = []
    const body = JSON.stringify({ text: 'bench', agent_id: agentId })
    for (let i = 0; i < REQUESTS; i++) create.push(await timed(() => request(`${host.url}/api/v1/commands`, 'POST', auth, body), 201))
    let done = 0
    const until = performance.now() + SECONDS * 1000
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < until) {
          await timed(() => request(list, 'GET', auth), 200)
          done++
        }
      }),
    )
    const rps = done / ((performance.now() - t0) / 1000)
    return { name, get, create, rps }
  } finally {
    await host.close()
  }
}

const main = async () => {
  const schema = `bench_wdb_${Date.now()}`
  const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-wdb-'))
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    NEXUS_DB_SCHEMA: schema,
    NEXUS_BUS_PREFIX: `${schema}:`,
    NEXUS_DATA_DIR: dataDir,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
    NEXUS_ADMIN_PASSWORD: PASSWORD,
    NEXUS_LOGIN_RATE_LIMIT: '100000',
    NEXUS_VERIFY_RATE_LIMIT: '1000000',
  }
  if (process.env.REDIS_URL) env.REDIS_URL = process.env.REDIS_URL
  let pooledUrl = process.env.NEXUS_BENCH_POOLED_URL
  const pgbouncerDir = mkdtempSync(join(tmpdir(), 'nexus-bench-pgbouncer-'))
  const script = join(import.meta.dirname, '..', 'scripts', 'pgbouncer.sh')
  if (!pooledUrl) {
    const port = await freePort()
    pooledUrl = execFileSync(script, ['start', pgbouncerDir], { env: { ...process.env, PGBOUNCER_PORT: String(port) }, encoding: 'utf8' }).trim()
  }
  const groups = ['auth', 'cortex'] as const
  const rows: Row[] = []
  try {
    rows.push(await measure('Node host (shared pool; baseline)', () => startNodeHost({ env, groups: [...groups] })))
    rows.push(await measure('workerd, straight to PostgreSQL', () => startWorkerdHost({ env, groups: [...groups] })))
    rows.push(await measure('workerd, through PgBouncer (session mode)', () => startWorkerdHost({ env: { ...env, DATABASE_URL: pooledUrl! }, groups: [...groups] })))
  } finally {
    if (!process.env.NEXUS_BENCH_POOLED_URL) execFileSync(script, ['stop', pgbouncerDir])
    rmSync(pgbouncerDir, { recursive: true, force: true })
    rmSync(dataDir, { recursive: true, force: true })
    const sql = postgres(databaseUrl, { max: 1, onnotice: () => undefined })
    await sql.unsafe(`drop schema if exists "${schema}" cascade`)
    await sql.end()
    agent.destroy()
  }
  const base = rows[0]!
  const ms = (x: number) => `${x.toFixed(1)} ms`
  console.log(`\nworkerd database connections (${REQUESTS} requests one at a time; ${CONCURRENCY} clients for ${SECONDS} s)\n`)
  console.log('| host | GET p50 / p99 | create p50 / p99 | GET p50 vs Node | GET req/s at 8 clients | vs Node |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${ms(q(r.get, 0.5))} / ${ms(q(r.get, 0.99))} | ${ms(q(r.create, 0.5))} / ${ms(q(r.create, 0.99))} | ` +
        `${(q(r.get, 0.5) / q(base.get, 0.5)).toFixed(1)}x | ${r.rps.toFixed(0)} | ${(r.rps / base.rps).toFixed(2)}x |`,
    )
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
