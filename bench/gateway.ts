/**
 * The gateway's added cost over calling Ollama directly, measured in one run on loopback, in three
 * processes as in production: the Node host in this one, the Ollama double in another
 * (bench/gateway-double.ts), the load generator in a third (bench/gateway-load.ts).
 *
 *   npm run bench:gateway [-- --quick] [-- --no-write]
 *
 * Figures: whole-answer latency p50/p99 and streaming time to first byte p50/p99, at concurrency 1 and
 * 64, each minus the same figure for the double alone; requests/s at saturation; this process's RSS and
 * V8 heap before and after 100,000 requests (after a forced GC). Bounded by counts and a time cap per
 * phase. Writes the "Gateway" section of docs/BENCHMARKS.md unless --quick or --no-write.
 */
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startNodeHost } from '../local-runtime/node/host.ts'
import type { FromLoad, RunSpec, ToLoad } from './gateway-load.ts'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'no-write': { type: 'boolean', default: false } } })
const quick = values.quick
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc (npm run bench:gateway does)')

const KEY = 'bench-master-key-0123456789abcdef'
const MEMORY_REQUESTS = quick ? 10_000 : 100_000
const PHASE_CAP_MS = 90_000
/** The paced double's time to the first token: a small model's on a GPU, at the fast end. */
const MODEL_DELAY_MS = 50

// The double and the load generator, each in a child process.
const child = (file: string) => fork(join(import.meta.dirname, file), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
const doubleProcess = child('gateway-double.ts')
const doubleUrl = await new Promise<string>((resolve) => doubleProcess.once('message', (m: { url: string }) => resolve(m.url)))
const load = child('gateway-load.ts')
let nextId = 0
const waiting = new Map<number, (m: Extract<FromLoad, { id: number }>) => void>()
await new Promise<void>((resolve) => {
  load.on('message', (m: FromLoad) => {
    if ('ready' in m) resolve()
    else waiting.get(m.id)?.(m)
  })
})
const remote = (spec: RunSpec) =>
  new Promise<Extract<FromLoad, { id: number }>>((resolve) => {
    const id = nextId++
    waiting.set(id, resolve)
    load.send({ id, run: spec } satisfies ToLoad)
  })

const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-gw-'))
const host = await startNodeHost({
  env: {
    HOST: '127.0.0.1',
    PORT: '0',
    NEXUS_DATA_DIR: dataDir,
    OLLAMA_BASE_URL: doubleUrl,
    NEXUS_MASTER_KEY: KEY,
    NEXUS_ADMIN_PASSWORD: 'bench-admin-password',
    LOG_LEVEL: 'warn',
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, NEXUS_DB_SCHEMA: `bench_${Date.now()}` } : {}),
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, NEXUS_BUS_PREFIX: `bench:${Date.now()}:` } : {}),
  },
  groups: ['gateway'],
})

const messages = [{ role: 'user', content: 'Say ok.' }]
const spec = (stream: boolean, direct: boolean, concurrency: number, count: number): RunSpec =>
  direct
    ? {
        url: `${doubleUrl}/api/chat`,
        body: JSON.stringify({ model: 'llama3.2:3b', messages, stream }),
        headers: { 'content-type': 'application/json' },
        stream,
        concurrency,
        count,
        capMs: PHASE_CAP_MS,
      }
    : {
        url: `${host.url}/v1/chat/completions`,
        body: JSON.stringify({ model: 'gpt-4o', messages, stream }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        stream,
        concurrency,
        count,
        capMs: PHASE_CAP_MS,
      }
const run = async (stream: boolean, direct: boolean, concurrency: number, count: number) => {
  const r = await remote(spec(stream, direct, concurrency, count))
  if (r.errors > 0) throw new Error(`${r.errors} requests failed (${direct ? 'direct' : 'gateway'})`)
  return r
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}
const f = (ms: number) => `${ms.toFixed(2)} ms`

interface LatencyRow {
  kind: string
  concurrency: number
  n: number
  direct: { p50: number; p99: number }
  gateway: { p50: number; p99: number }
}

const latency = async (stream: boolean, concurrency: number, count: number): Promise<LatencyRow> => {
  const direct: number[] = []
  const gateway: number[] = []
  // Interleaved rounds, so drift (GC, CPU frequency, the database's batches) hits both sides alike.
  const rounds = 4
  for (let r = 0; r < rounds; r++) {
    direct.push(...(await run(stream, true, concurrency, count / rounds)).times)
    gateway.push(...(await run(stream, false, concurrency, count / rounds)).times)
  }
  const row = {
    kind: stream ? 'streaming, time to first byte' : 'whole answer',
    concurrency,
    n: gateway.length,
    direct: { p50: quantile(direct, 0.5), p99: quantile(direct, 0.99) },
    gateway: { p50: quantile(gateway, 0.5), p99: quantile(gateway, 0.99) },
  }
  console.log(
    `${row.kind.padEnd(30)} c=${String(concurrency).padStart(2)} n=${row.n}  direct p50 ${f(row.direct.p50)} p99 ${f(row.direct.p99)}  ` +
      `gateway p50 ${f(row.gateway.p50)} p99 ${f(row.gateway.p99)}  added p50 ${f(row.gateway.p50 - row.direct.p50)} p99 ${f(row.gateway.p99 - row.direct.p99)}`,
  )
  return row
}

/** Requests/s with `concurrency` clients for `seconds` (whole answers). */
const throughput = async (direct: boolean, concurrency: number, seconds: number) => {
  const r = await remote({ ...spec(false, direct, concurrency, Number.MAX_SAFE_INTEGER), capMs: seconds * 1000 })
  if (r.errors > 0) throw new Error(`${r.errors} requests failed at saturation`)
  return r.times.length / r.seconds
}

const memory = () => {
  gc()
  gc()
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed }
}
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`

const started = Date.now()
const load1 = loadavg()[0]!
console.log(`gateway benchmark: ${cpus().length} cores, Node ${process.version}, load average ${load1.toFixed(1)}, ${quick ? 'quick' : 'full'} run`)
// Warm-up: JIT, connection pools, caches.
await run(false, true, 8, 1000)
await run(false, false, 8, 2000)
await run(true, false, 8, 1000)

const rows: LatencyRow[] = []
for (const concurrency of [1, 64]) {
  const count = concurrency === 1 ? (quick ? 400 : 2000) : quick ? 2000 : 4000
  rows.push(await latency(false, concurrency, count))
  rows.push(await latency(true, concurrency, count))
}
// Concurrency 64 with the double taking a model's time to its first token: 64 requests in flight that
// wait on the model, as they do in production, instead of 64 clients saturating the machine's 2 cores.
const setModelDelay = (delayMs: number) =>
  new Promise<void>((resolve) => {
    doubleProcess.once('message', () => resolve())
    doubleProcess.send({ delayMs })
  })
await setModelDelay(MODEL_DELAY_MS)
const paced = { kind: (k: string) => `${k}, first token after ${MODEL_DELAY_MS} ms`, count: quick ? 2000 : 8000 }
rows.push({ ...(await latency(false, 64, paced.count)), kind: paced.kind('whole answer') })
rows.push({ ...(await latency(true, 64, paced.count)), kind: paced.kind('streaming, time to first byte') })
await setModelDelay(0)

const seconds = quick ? 3 : 10
const directRps = await throughput(true, 64, seconds)
const gatewayRps = await throughput(false, 64, seconds)
console.log(`saturation (c=64, ${seconds} s, whole answers): direct ${directRps.toFixed(0)} req/s, gateway ${gatewayRps.toFixed(0)} req/s`)

// Memory: 100,000 requests (half streamed) at concurrency 64 with a one-token reply, then a forced GC.
await new Promise((r) => setTimeout(r, 1500)) // let the usage log's last batch land
const before = memory()
const memoryRun = await remote({ ...spec(false, false, 64, MEMORY_REQUESTS), mixed: true, capMs: 10 * 60_000 })
if (memoryRun.errors > 0) throw new Error(`${memoryRun.errors} requests failed in the memory phase`)
const memorySeconds = memoryRun.seconds
await new Promise((r) => setTimeout(r, 2500))
const after = memory()
console.log(
  `memory over ${MEMORY_REQUESTS} requests (${memorySeconds.toFixed(0)} s): rss ${mib(before.rss)} -> ${mib(after.rss)}, ` +
    `heap ${mib(before.heap)} -> ${mib(after.heap)}`,
)
const usageRows = await host.services.db.sql`select count(*)::int as n from ${host.services.db.t.gateway_usage}`
console.log(`usage rows written: ${usageRows[0]!.n}`)

await host.close()
load.send({ stop: true } satisfies ToLoad)
doubleProcess.send({ stop: true })
if (process.env.DATABASE_URL) {
  const { dropSchema } = await import('../test/support/harness.ts')
  await dropSchema(process.env.DATABASE_URL, host.config.NEXUS_DB_SCHEMA).catch(() => undefined)
}
rmSync(dataDir, { recursive: true, force: true })
const totalSeconds = (Date.now() - started) / 1000
console.log(`total ${totalSeconds.toFixed(0)} s`)

if (!values['no-write'] && !quick) {
  const date = new Date().toISOString().slice(0, 10)
  const db = process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite'
  const bus = process.env.REDIS_URL ? 'Redis' : 'in-process bus'
  const table = rows
    .map(
      (r) =>
        `| ${r.kind} | ${r.concurrency} | ${r.n} | ${f(r.direct.p50)} / ${f(r.direct.p99)} | ${f(r.gateway.p50)} / ${f(r.gateway.p99)} | ` +
        `**${f(r.gateway.p50 - r.direct.p50)} / ${f(r.gateway.p99 - r.direct.p99)}** |`,
    )
    .join('\n')
  const section = `## Gateway (\`npm run bench:gateway\`)

Three processes on loopback, as in production: the Node host (gateway functions, master key, usage log
on) in the benchmark's, the Ollama test double in a second, the load generator (node:http, keep-alive)
in a third. The same requests go to the double directly in the same run, interleaved in rounds; added =
gateway minus direct at the same percentile. The double answers one token at once (except in the rows
marked "first token after ${MODEL_DELAY_MS} ms"), so the figures are the gateway's own cost, not a model's: through the
gateway a request makes one more HTTP exchange (client to gateway) and the gateway's own (gateway to
Ollama), both counted in "added".

Run of ${date}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${db}, ${bus}, load average
${load1.toFixed(1)} at the start (other work on the machine):

| measure | concurrency | requests | direct p50 / p99 | gateway p50 / p99 | added p50 / p99 |
| --- | --- | --- | --- | --- | --- |
${table}

Saturation (concurrency 64, ${seconds} s, whole answers): double alone ${directRps.toFixed(0)} req/s, through the
gateway ${gatewayRps.toFixed(0)} req/s (the three processes share the machine's ${cpus().length} cores).

Memory of the host's process over ${MEMORY_REQUESTS.toLocaleString('en')} requests (half streamed, concurrency 64,
${memorySeconds.toFixed(0)} s), after a forced GC: RSS ${mib(before.rss)} -> ${mib(after.rss)}, V8 heap ${mib(before.heap)} -> ${mib(after.heap)}.
All ${usageRows[0]!.n} usage rows were written in batches during the run. Whole run: ${totalSeconds.toFixed(0)} s.

Targets: added p50 <= 1 ms, p99 <= 5 ms, memory flat.

Reading the concurrency-64 rows: with a double that answers at once, 64 clients that each send a
request as soon as the last one is answered keep every process busy, so a request's latency is mostly
its wait in line, 64 / throughput: the double alone answers ~${directRps.toFixed(0)}/s, the double behind the gateway
~${gatewayRps.toFixed(0)}/s, on the same ${cpus().length} cores. There "added" measures the throughput lost to the gateway's own CPU,
not a delay each request picks up. The rows with the first token after ${MODEL_DELAY_MS} ms keep 64 requests in flight
that wait on the "model", as in production: 64 / ${MODEL_DELAY_MS} ms = ${Math.round(64000 / MODEL_DELAY_MS)} requests/s, which the double alone
serves with CPU to spare but which is near what the gateway serves on this machine's ${cpus().length} cores (shared with the
double and the load generator), so what is added there is still mostly queueing for CPU.
`
  const path = join(import.meta.dirname, '..', 'docs', 'BENCHMARKS.md')
  // Re-read right before writing: other sections of this file belong to others.
  const current = readFileSync(path, 'utf8')
  const start = current.indexOf('## Gateway')
  let next = -1
  if (start >= 0) {
    const rest = current.slice(start + 3)
    const m = /\n## /.exec(rest)
    next = m ? start + 3 + m.index + 1 : -1
  }
  const updated =
    start < 0
      ? `${current.trimEnd()}\n\n${section}`
      : `${current.slice(0, start)}${section}${next >= 0 ? `\n${current.slice(next)}` : ''}`
  writeFileSync(path, updated)
  console.log(`wrote the Gateway section of ${path}`)
}
process.exit(0)
