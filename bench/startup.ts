/**
 * Cold start of each function on each runtime, and the size of each function's workerd bundle.
 * Baselines measured in the same run: a bare Node HTTP server process, and a hello-world worker.
 *
 *   npm run bench:startup [-- --runs 5 --function health]
 *
 * The database is started once beforehand (PGlite over its socket, or DATABASE_URL), so the figures
 * are the host's and the function's own start, not the database's. Bounded: runs × functions.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { Log, LogLevel, Miniflare } from 'miniflare'
import { functions, type FunctionSpec } from '../workers.config.ts'
import { createDb, migrate } from '../lib/db/index.ts'
import { startEmbeddedPostgres } from '../local-runtime/node/pglite.ts'
import { buildFunction, COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from '../local-runtime/workerd/build.ts'
import { freePort } from '../test/support/process.ts'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, function: { type: 'string', multiple: true } } })
const runs = Math.max(1, Math.min(20, Number(values.runs)))
const selected: FunctionSpec[] = values.function?.length
  ? functions.filter((f) => values.function!.includes(f.name))
  : [...functions]

const root = join(import.meta.dirname, '..')
const tsx = join(root, 'node_modules', '.bin', 'tsx')
process.env.WRANGLER_SEND_METRICS = 'false'
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!
}
const stats = (xs: number[]) => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) })
const ms = (n: number) => `${n.toFixed(0)} ms`

const probe = (spec: FunctionSpec) => {
  const get = spec.routes.find((r) => r.method === 'GET')
  const route = get ?? spec.routes[0]!
  return { method: route.method, path: route.path.replace(/:[^/]+/g, 'x') }
}

/** Polls until the URL answers anything below 500; returns the elapsed milliseconds since `t0`. */
const firstAnswer = async (url: string, method: string, t0: number, deadlineMs = 60_000) => {
  for (;;) {
    try {
      const res = await fetch(url, method === 'GET' ? {} : { method, body: '{}', headers: { 'content-type': 'application/json' } })
      await res.body?.cancel()
      if (res.status < 500) return performance.now() - t0
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > deadlineMs) throw new Error(`${url} did not answer within ${deadlineMs} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const nodeStart = async (args: string[], env: Record<string, string>, path: string, method: string) => {
  const port = await freePort()
  const t0 = performance.now()
  const child = spawn(tsx, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, PORT: String(port) },
    stdio: 'ignore',
  })
  try {
    return await firstAnswer(`http://127.0.0.1:${port}${path}`, method, t0)
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
  }
}

const workerdStart = async (script: string, bindings: Record<string, string>, path: string, method: string) => {
  const t0 = performance.now()
  const mf = new Miniflare({
    // As the workerd host gives it: one ES module, so miniflare does not parse the bundle for imports.
    modules: [{ type: 'ESModule', path: 'worker.mjs', contents: script }],
    compatibilityDate: COMPATIBILITY_DATE,
    compatibilityFlags: COMPATIBILITY_FLAGS,
    bindings,
    port: 0,
    cf: false,
    log: new Log(LogLevel.ERROR),
    outboundService: { network: { allow: ['private', 'local'] } },
  })
  try {
    const url = await mf.ready
    return await firstAnswer(new URL(path, url).toString(), method, t0)
  } finally {
    await mf.dispose()
  }
}

const main = async () => {
  const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres('memory://')
  const databaseUrl = process.env.DATABASE_URL ?? embedded!.url
  const schema = `bench_startup_${Date.now()}`
  const db = createDb(databaseUrl, { schema, max: 1 })
  await migrate(db)
  const env = {
    DATABASE_URL: databaseUrl,
    NEXUS_DB_SCHEMA: schema,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'error',
    NEXUS_ADMIN_PASSWORD: 'bench-admin-password',
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
  }

  const rows: string[] = []
  const line = (s: string) => {
    rows.push(s)
    console.log(s)
  }

  // Baselines: the cheapest possible process and worker on each runtime, same machine, same run.
  const nodeBase: number[] = []
  const bareServer = `require('node:http').createServer((q,s)=>s.end('ok')).listen(Number(process.env.PORT),'127.0.0.1')`
  for (let i = 0; i < runs; i++) {
    const port = await freePort()
    const t0 = performance.now()
    const child = spawn(process.execPath, ['-e', bareServer], { env: { PORT: String(port) }, stdio: 'ignore' })
    nodeBase.push(await firstAnswer(`http://127.0.0.1:${port}/`, 'GET', t0))
    child.kill()
    await new Promise((r) => child.once('exit', r))
  }
  const tsxBase: number[] = []
  for (let i = 0; i < runs; i++) {
    const port = await freePort()
    const t0 = performance.now()
    const child = spawn(tsx, ['bench/fixtures/bare-server.ts'], {
      cwd: root,
      env: { PORT: String(port), PATH: process.env.PATH ?? '' },
      stdio: 'ignore',
    })
    tsxBase.push(await firstAnswer(`http://127.0.0.1:${port}/`, 'GET', t0))
    child.kill()
    await new Promise((r) => child.once('exit', r))
  }
  const workerBase: number[] = []
  for (let i = 0; i < runs; i++)
    workerBase.push(await workerdStart(`export default { fetch() { return new Response('ok') } }`, {}, '/', 'GET'))

  const nb = stats(nodeBase)
  const tb = stats(tsxBase)
  const wb = stats(workerBase)
  line(`runs per figure: ${runs}; database: ${embedded ? 'PGlite (started beforehand)' : 'DATABASE_URL'}; bus: ${process.env.REDIS_URL ? 'Redis' : 'in-process'}`)
  line('')
  line('| function | Node cold start p50 / p99 | ratio to bare tsx server | workerd cold start p50 / p99 | ratio to hello worker | bundle | gzip |')
  line('| --- | --- | --- | --- | --- | --- | --- |')
  line(`| _baseline_ | bare node ${ms(nb.p50)} / ${ms(nb.p99)}; bare tsx ${ms(tb.p50)} / ${ms(tb.p99)} | 1.00 | hello worker ${ms(wb.p50)} / ${ms(wb.p99)} | 1.00 | | |`)

  for (const spec of selected) {
    const { method, path } = probe(spec)
    const node: number[] = []
    for (let i = 0; i < runs; i++) node.push(await nodeStart(['local-runtime/node/main.ts', '--function', spec.name], env, path, method))
    const built = await buildFunction(spec)
    const wd: number[] = []
    for (let i = 0; i < runs; i++) wd.push(await workerdStart(built.code, env, path, method))
    const n = stats(node)
    const w = stats(wd)
    const gz = gzipSync(built.code).byteLength
    line(
      `| ${spec.name} | ${ms(n.p50)} / ${ms(n.p99)} | ${(n.p50 / tb.p50).toFixed(2)} | ${ms(w.p50)} / ${ms(w.p99)} | ${(w.p50 / wb.p50).toFixed(2)} | ${(built.bytes / 1024).toFixed(0)} KiB | ${(gz / 1024).toFixed(0)} KiB |`,
    )
  }

  // The embedded default as a user meets it, PGlite's first initdb included: `npm start`, and
  // `npm run dev:workerd` (every function a worker of its own behind the router), each on a fresh data dir.
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const freshStarts = async (entry: string) => {
    const times: number[] = []
    for (let i = 0; i < Math.min(runs, 3); i++) {
      const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-'))
      const env = { NEXUS_DATA_DIR: dir, OLLAMA_BASE_URL: 'http://127.0.0.1:9', LOG_LEVEL: 'error', NEXUS_ADMIN_PASSWORD: 'bench-admin-password' }
      times.push(await nodeStart([entry], env, '/health', 'GET'))
      rmSync(dir, { recursive: true, force: true })
    }
    return times
  }
  line('')
  for (const [label, entry] of [['npm start', 'local-runtime/node/main.ts'], ['npm run dev:workerd', 'local-runtime/workerd/main.ts']]) {
    const times = await freshStarts(entry!)
    const f = stats(times)
    line(`${label}, every function, fresh embedded PGlite data dir, to first /health answer: p50 ${ms(f.p50)}, p99 ${ms(f.p99)} (${times.length} runs)`)
  }

  await db.sql.unsafe(`drop schema if exists "${schema}" cascade`)
  await db.close()
  await embedded?.close()
}

await main()
