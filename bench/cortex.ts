/**
 * Cortex end to end: create -> claim -> complete -> `command_completed` received over the WebSocket.
 * Commands per second at saturation and p50/p99 latency at fixed rates, beside the raw PostgreSQL rate
 * of the same statements (the three transactions, advisory lock and event rows included, sent as
 * lib/cortex/events.ts sends them: BEGIN in the first statement's write; a creation's insert or a
 * completion's update in one write with its event and the COMMIT; a claim and its event as one
 * statement) in the same run, in interleaved rounds (NEXUS, then raw, several times) so that both see
 * the same machine.
 *
 *   npm run bench:cortex [-- --seconds 12 --rounds 6 --concurrency 8]
 *
 * Uses DATABASE_URL / REDIS_URL when set, else the embedded defaults. Loopback only, bounded in time.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import WebSocket from 'ws'
import { fork } from 'node:child_process'
import http from 'node:http'
import { createDb, migrate } from '../lib/db/index.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '12' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '6' },
  },
})
const seconds = Math.min(60, Math.max(2, Number(values.seconds)))
const rounds = Math.min(20, Math.max(1, Math.round(Number(values.rounds))))
const concurrency = Math.min(64, Math.max(1, Number(values.concurrency)))

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN
}
const WARMUP_MS = 4_000
const fmt = (n: number) => `${n.toFixed(1)} ms`

const main = async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-cortex-'))
  const schema = `bench_cortex_${Date.now()}`
  const env: Record<string, string> = {
    PORT: '0',
    NEXUS_DATA_DIR: dataDir,
    NEXUS_DB_SCHEMA: schema,
    NEXUS_BUS_PREFIX: `${schema}:`,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
    NEXUS_ADMIN_PASSWORD: 'bench-admin-password',
    NEXUS_LOGIN_RATE_LIMIT: '100000',
    NEXUS_VERIFY_RATE_LIMIT: '1000000',
  }
  if (process.env.DATABASE_URL) env.DATABASE_URL = process.env.DATABASE_URL
  if (process.env.REDIS_URL) env.REDIS_URL = process.env.REDIS_URL
  // The host runs in a process of its own, as in production: the load generator (this process) must
  // not share its event loop. It answers with its address and database, and stops on 'stop'.
  const child = fork(join(import.meta.dirname, 'cortex-host.ts'), [], {
    // BENCH_CPU_PROF=<dir> writes the host's CPU profile there, to see where its time goes.
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])],
    env: { ...process.env, BENCH_HOST_ENV: JSON.stringify(env) },
    stdio: 'inherit',
  })
  const host = await new Promise<{ url: string; databaseUrl: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; databaseUrl: string }))
    child.once('exit', (code) => reject(new Error(`the host exited with ${code}`)))
  })
  // The client side is node:http with keep-alive: Node's fetch costs ~3x its CPU per request, and on
  // a small machine the load generator's CPU is taken from the host and the database under test.
  const agent = new http.Agent({ keepAlive: true })
  const api = (method: string, path: string, token: string, body?: unknown) =>
    new Promise<{ command_id: string } | null>((resolve, reject) => {
      const payload = body ? JSON.stringify(body) : undefined
      const req = http.request(
        host.url + path,
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : { 'content-length': 0 }),
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString()
            if ((res.statusCode ?? 500) >= 400) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))
            else resolve(text ? JSON.parse(text) : null)
          })
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(payload)
    })
  const login = await fetch(`${host.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'bench-admin-password' }),
  })
  const token = ((await login.json()) as { access_token: string }).access_token
  await api('POST', '/api/v1/agents/register', token, { agent_id: 'bench-agent' })

  // One WebSocket sees every completion, as a dashboard would.
  const waiting = new Map<string, () => void>()
  const ws = new WebSocket(`${host.url.replace('http', 'ws')}/api/v1/events/ws?type=command_completed`, {
    headers: { authorization: `Bearer ${token}` },
  })
  ws.on('message', (d) => {
    const ev = JSON.parse(d.toString()) as { command_id?: string }
    if (ev.command_id) waiting.get(ev.command_id)?.()
  })
  await new Promise((r) => ws.once('open', r))

  // Each cycle's steps: create, claim, complete, and the wait for its event after the completion.
  const steps: number[][] = []
  const cycle = async () => {
    const t0 = performance.now()
    const created = (await api('POST', '/api/v1/commands', token, { text: 'bench', agent_id: 'bench-agent' }))!
    const t1 = performance.now()
    // Bounded: an event that never comes fails the run instead of hanging it.
    const received = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no command_completed for ${created.command_id} within 30 s`)), 30_000)
      waiting.set(created.command_id, () => {
        clearTimeout(timer)
        resolve()
      })
    })
    // Claims take the oldest queued command, not necessarily this one: each cycle completes what it got.
    // A long-poll claim, as agents make them: a claim whose snapshot predates the newest command, and
    // whose older candidate another claimer locked first, re-checks instead of answering 204 and leaving
    // a command queued with nobody to complete it (which hung the run when it happened as a slice ended).
    const claimed = await api('POST', '/api/v1/agents/bench-agent/commands/claim?wait=5', token)
    const t2 = performance.now()
    if (claimed) await api('POST', `/api/v1/commands/${claimed.command_id}/complete`, token, { result: 'ok' })
    const t3 = performance.now()
    await received
    const t4 = performance.now()
    steps.push([t1 - t0, t2 - t1, t3 - t2, t4 - t3])
    waiting.delete(created.command_id)
    return performance.now() - t0
  }

  // Raw PostgreSQL: the same three transactions, directly, at the same concurrency, on a schema of its
  // own made by the same migrations (its events must not reach the host's hub between rounds).
  const dbUrl = process.env.DATABASE_URL
  // Embedded: the host's PGlite, through the same wire server its functions use.
  const rawSchema = `${schema}_raw`
  const rawDb = createDb(host.databaseUrl, { schema: rawSchema, max: 1 })
  await migrate(rawDb)
  await rawDb.sql`insert into ${rawDb.t.agents} (agent_id, name) values ('bench-agent', 'bench-agent')`
  await rawDb.close()
  const sql = postgres(host.databaseUrl, { max: concurrency, onnotice: () => undefined })
  const t = (name: string) => sql(`${rawSchema}.${name}`)
  // Each transaction as lib/cortex/events.ts sends it: begin, the statements, then the advisory lock and
  // the event insert in one statement with the COMMIT pipelined behind it, on one reserved connection.
  // `last`: a statement sent but not awaited, so the event and the COMMIT go out in its write (withEvents' deferred).
  const txn = async <T>(fn: (tx: postgres.ReservedSql) => Promise<{ value: T; event?: [string, string]; last?: Promise<unknown> }>) => {
    const tx = await sql.reserve()
    let open = false
    try {
      // BEGIN goes out in one write with the first statement, as withEvents sends it.
      const begin = tx`begin`.execute()
      begin.catch(() => undefined)
      open = true
      const { value, event, last } = await fn(tx)
      last?.catch(() => undefined)
      await begin
      if (!event) {
        open = false
        await tx`commit`
        return value
      }
      const [type, id] = event
      const insert = tx`insert into ${t('events')} (type, command_id, agent_id, payload, actor)
        select e.type, e.command_id, e.agent_id, e.payload, e.actor
        from (select pg_advisory_xact_lock(7337002, hashtext(${rawSchema}))) as lock,
          jsonb_to_recordset(${tx.json([{ type, command_id: id, agent_id: 'bench-agent', payload: { status: type }, actor: 'admin' }])}::jsonb)
            as e(type text, command_id uuid, agent_id text, payload jsonb, actor text)
        returning *`.execute()
      open = false
      const commit = tx`commit`.execute()
      await last
      await insert
      await commit
      return value
    } catch (err) {
      if (open) await tx`rollback`.catch(() => undefined)
      throw err
    } finally {
      tx.release()
    }
  }
  const rawCycle = async () => {
    const t0 = performance.now()
    await txn(async (tx) => {
      const id = crypto.randomUUID()
      const last = tx`insert into ${t('commands')} (command_id, text, agent_id) values (${id}, 'bench', 'bench-agent')
        returning *`.execute()
      return { value: id, event: ['command_created', id], last }
    })
    // The claim and its event: one statement, no transaction around it, as claimOne sends it.
    const [claimed] = await sql`
      with claimed as (
        update ${t('commands')} c set status = 'dispatched', lease_token = gen_random_uuid(),
          lease_expires_at = now() + make_interval(secs => 60), attempts = attempts + 1,
          dispatched_at = now(), updated_at = now()
        where c.command_id = (select command_id from ${t('commands')} where agent_id = 'bench-agent' and status = 'queued'
          and available_at <= now() order by priority desc, seq limit 1 for update skip locked)
        returning c.*),
      ev as (
        insert into ${t('events')} (type, command_id, agent_id, payload, actor)
        select 'command_dispatched', c.command_id, c.agent_id,
          jsonb_build_object('status', c.status, 'attempts', c.attempts, 'text', c.text, 'priority', c.priority,
            'lease_expires_at', to_char(c.lease_expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
          'admin'
        from claimed c, (select pg_advisory_xact_lock(7337002, hashtext(${rawSchema}))) as lock
        returning id, created_at, payload, command_id)
      select c.*, e.id as event_id, e.created_at as event_created_at, e.payload as event_payload
      from claimed c join ev e on e.command_id = c.command_id`
    const claimedId = claimed?.command_id as string | undefined
    if (claimedId)
      await txn(async (tx) => {
        await tx`select c.*, a.owner_id from ${t('commands')} c left join ${t('agents')} a on a.agent_id = c.agent_id
          where c.command_id = ${claimedId} for update of c`
        const last = tx`update ${t('commands')} set status = 'completed', result = 'ok', finished_at = now()
          where command_id = ${claimedId} returning *`.execute()
        return { value: null, event: ['command_completed', claimedId], last }
      })
    return performance.now() - t0
  }

  // Saturation, in interleaved rounds: NEXUS for a slice, then raw PostgreSQL for a slice, `rounds` times,
  // so both see the same machine (its speed drifts within minutes here). Each side gets `seconds` in all.
  const slice = (seconds * 1000) / rounds
  const saturate = async (fn: () => Promise<number>, into: number[], ms = slice) => {
    const until = performance.now() + ms
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) into.push(await fn())
      }),
    )
  }
  // A warm-up of each first, not counted: JIT, pools and prepared statements, on both sides. The host
  // needs ~4 s at saturation to reach its steady rate (a shorter warm-up left the first round at ~45%).
  await saturate(cycle, [], WARMUP_MS)
  await saturate(rawCycle, [], WARMUP_MS)
  steps.length = 0
  const sat: number[] = []
  const raw: number[] = []
  const perRound: string[] = []
  for (let r = 0; r < rounds; r++) {
    const [s0, r0] = [sat.length, raw.length]
    await saturate(cycle, sat)
    await saturate(rawCycle, raw)
    const [n, b] = [((sat.length - s0) * 1000) / slice, ((raw.length - r0) * 1000) / slice]
    perRound.push(`${n.toFixed(0)}/${b.toFixed(0)} = ${((n / b) * 100).toFixed(0)}%`)
  }
  const rate = sat.length / seconds
  const rawRate = raw.length / seconds
  const stepP50 = (i: number) => fmt(q(steps.slice(0, sat.length).map((st) => st[i]!), 0.5))
  const stepLine = `steps at saturation, p50: create ${stepP50(0)}, claim ${stepP50(1)}, complete ${stepP50(2)}, event after the completion ${stepP50(3)}`
  const roundLine = `NEXUS / raw per round, commands/s: ${perRound.join('; ')}`

  // Fixed rates (open loop): latency when the system is not saturated.
  const fixed: Array<{ rps: number; lat: number[] }> = []
  for (const rps of [Math.max(5, Math.round(rate * 0.25)), Math.max(10, Math.round(rate * 0.5))]) {
    const lat: number[] = []
    const n = Math.round(rps * Math.min(5, seconds))
    const jobs: Promise<void>[] = []
    const start = performance.now()
    for (let i = 0; i < n; i++) {
      const due = start + (i * 1000) / rps
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())))
      jobs.push(cycle().then((ms) => void lat.push(ms)))
    }
    await Promise.all(jobs)
    fixed.push({ rps, lat })
  }
  ws.close()
  agent.destroy()

  console.log(`database: ${dbUrl ? 'PostgreSQL (DATABASE_URL)' : 'embedded PGlite'}; bus: ${process.env.REDIS_URL ? 'Redis' : 'in-process'}; concurrency ${concurrency}; ${seconds} s per side at saturation, in ${rounds} interleaved rounds`)
  console.log('')
  console.log('| measure | commands/s | p50 | p99 |')
  console.log('| --- | --- | --- | --- |')
  console.log(`| raw PostgreSQL, same statements (baseline) | ${rawRate.toFixed(0)} | ${fmt(q(raw, 0.5))} | ${fmt(q(raw, 0.99))} |`)
  console.log(`| NEXUS end to end, saturated | ${rate.toFixed(0)} (${((rate / rawRate) * 100).toFixed(0)}% of raw) | ${fmt(q(sat, 0.5))} | ${fmt(q(sat, 0.99))} |`)
  for (const f of fixed) console.log(`| NEXUS end to end at ${f.rps}/s | ${f.rps} | ${fmt(q(f.lat, 0.5))} | ${fmt(q(f.lat, 0.99))} |`)
  console.log('')
  console.log(stepLine)
  console.log(roundLine)

  for (const name of [schema, rawSchema]) await sql.unsafe(`drop schema if exists "${name}" cascade`)
  await sql.end()
  child.send('stop')
  await new Promise((r) => child.once('exit', r))
  rmSync(dataDir, { recursive: true, force: true })
}

await main()
