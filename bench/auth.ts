/**
 * Auth throughput on the Node host, started in-process on loopback with embedded defaults (PGlite, the
 * in-process bus): logins per second (bcrypt cost 12 bound), and token verifications per second through
 * requireAuth against raw jose.jwtVerify with the same key and options, in the same run.
 *
 *   npm run bench:auth [-- --verifies 10000 --rounds 10 --logins 24 --write]
 *
 * `--write` puts the results under "## Auth" in docs/BENCHMARKS.md (other sections are kept). Bounded:
 * counts are capped and each phase stops at its time budget.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Hono } from 'hono'
import { importJWK, jwtVerify } from 'jose'
import { defineFunction, type AppEnv } from '../lib/app.ts'
import { requireAuth, verifyAccessToken } from '../lib/auth/middleware.ts'
import { verifyOptions } from '../lib/auth/verify.ts'
import { startNodeHost } from '../local-runtime/node/host.ts'

const { values } = parseArgs({
  options: {
    verifies: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '10' },
    logins: { type: 'string', default: '24' },
    write: { type: 'boolean', default: false },
  },
})
const VERIFIES = Math.max(100, Math.min(50_000, Number(values.verifies)))
const ROUNDS = Math.max(1, Math.min(20, Number(values.rounds)))
const LOGINS = Math.max(4, Math.min(200, Number(values.logins)))
const PHASE_BUDGET_MS = 60_000
const PASSWORD = 'bench-admin-password'

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}
const fmtMs = (x: number) => (x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(x < 10 ? 2 : 0)} ms`)

interface Series {
  name: string
  latencies: number[]
  elapsedMs: number
}
const perSecond = (s: Series) => (s.latencies.length / s.elapsedMs) * 1000

/** Runs `op` sequentially up to `count` times (or the budget), timing each call. */
const measure = async (name: string, count: number, op: () => Promise<unknown>, into?: Series): Promise<Series> => {
  const series = into ?? { name, latencies: [], elapsedMs: 0 }
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    await op()
    series.latencies.push(performance.now() - t)
    if (performance.now() - started > PHASE_BUDGET_MS) break
  }
  series.elapsedMs += performance.now() - started
  return series
}

const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-auth-'))
const host = await startNodeHost({
  env: {
    HOST: '127.0.0.1',
    PORT: '0',
    NEXUS_DATA_DIR: dataDir,
    NEXUS_ADMIN_PASSWORD: PASSWORD,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'warn',
    // The bench measures throughput, not the brute-force limits.
    NEXUS_LOGIN_RATE_LIMIT: '1000000',
    NEXUS_VERIFY_RATE_LIMIT: '1000000',
  },
  groups: ['auth'],
  logSink: () => undefined,
})

try {
  const login = async () => {
    const res = await fetch(`${host.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: PASSWORD }),
    })
    if (res.status !== 200) throw new Error(`login answered ${res.status}`)
    return ((await res.json()) as { access_token: string }).access_token
  }

  // Logins: one at a time, then 4 in flight (bcrypt in bcryptjs runs on the event loop: one core's worth).
  await login() // warm-up
  const loginSeq = await measure('login, 1 in flight', LOGINS, login)
  const concurrent: Series = { name: 'login, 4 in flight', latencies: [], elapsedMs: 0 }
  {
    const started = performance.now()
    let left = LOGINS
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        while (left-- > 0) {
          const t = performance.now()
          await login()
          concurrent.latencies.push(performance.now() - t)
        }
      }),
    )
    concurrent.elapsedMs = performance.now() - started
  }

  // Verifications, all in this process: the same token, key and jose options for each variant.
  const token = await login()
  const { services } = host
  const jwks = (await (await fetch(`${host.url}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, string>> }
  const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string
  const jwk = jwks.keys.find((k) => k.kid === kid)!
  const publicKey = await importJWK({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'RS256')
  const options = verifyOptions(services)
  // Two bare Hono apps with the same shape, so the framework costs the same on both sides: one runs
  // requireAuth, the other reads the Bearer header and calls jose.jwtVerify itself.
  const base = () =>
    new Hono<AppEnv>().use('*', async (c, next) => {
      c.set('services', services)
      await next()
    })
  const viaMiddleware = base().get('/probe', requireAuth(), (c) => c.body(null, 204))
  const viaRaw = base().get('/probe', async (c) => {
    await jwtVerify(c.req.header('authorization')!.slice(7), publicKey, options)
    return c.body(null, 204)
  })
  const fn = defineFunction('bench-probe', new Hono<AppEnv>().get('/probe', requireAuth(), (c) => c.body(null, 204)))
  const bindings = { NEXUS_SERVICES: { services } }
  const ctx = { waitUntil: () => undefined }
  const headers = { authorization: `Bearer ${token}` }
  const expect204 = (res: Response) => {
    if (res.status !== 204) throw new Error(`probe answered ${res.status}`)
  }

  const variants: Array<[string, () => Promise<unknown>]> = [
    ['raw jose.jwtVerify (same key, same options)', () => jwtVerify(token, publicKey, options)],
    ['verifyAccessToken: what requireAuth runs (a token seen before: expiry, key and revocation rechecked)', () => verifyAccessToken(services, token)],
    [
      'verifyAccessToken, first sight of the token (kid check, key-set cache, RSA check, claims, revocation)',
      () => verifyAccessToken(services, token, { cache: false }),
    ],
    ['Hono app, handler calling raw jose.jwtVerify', async () => expect204(await viaRaw.request('/probe', { headers }))],
    ['Hono app, requireAuth()', async () => expect204(await viaMiddleware.request('/probe', { headers }))],
    [
      'a whole NEXUS function: wrapper (request id, services, CORS, metrics) + requireAuth',
      async () => expect204(await fn.fetch(new Request('http://bench.local/probe', { headers }), bindings, ctx)),
    ],
  ]
  for (const [, op] of variants) for (let i = 0; i < 300; i++) await op() // warm-up: JIT, caches, the first sync
  const series = new Map<string, Series>(variants.map(([name]) => [name, { name, latencies: [], elapsedMs: 0 }]))
  // Interleaved rounds, so drift (GC, the other core) falls on every variant alike.
  for (let r = 0; r < ROUNDS; r++)
    for (const [name, op] of variants) await measure(name, Math.ceil(VERIFIES / ROUNDS), op, series.get(name))

  const httpVerify = await measure('POST /api/v1/auth/verify over loopback HTTP', Math.min(2000, VERIFIES / 2), async () => {
    const res = await fetch(`${host.url}/api/v1/auth/verify`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`verify answered ${res.status}`)
  })

  const [raw, direct, cold, honoRaw, honoAuth, whole] = variants.map(([name]) => series.get(name)!) as [Series, Series, Series, Series, Series, Series]
  // Ratios from median latencies (baseline p50 / variant p50): on a shared machine the medians hold still
  // while the means swing with every GC pause and every neighbour's burst.
  const pct = (a: Series, b: Series) => `${((quantile(b.latencies, 0.5) / quantile(a.latencies, 0.5)) * 100).toFixed(0)} %`
  const row = (s: Series, vs: string) =>
    `| ${s.name} | ${s.latencies.length} | ${perSecond(s).toFixed(perSecond(s) < 100 ? 1 : 0)} | ${fmtMs(quantile(s.latencies, 0.5))} | ${fmtMs(quantile(s.latencies, 0.99))} | ${vs} |`
  const date = new Date().toISOString().slice(0, 10)
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU'
  const section = [
    '## Auth (`npm run bench:auth`)',
    '',
    'The Node host started in-process on loopback with embedded defaults (PGlite, in-process bus), serving the',
    'auth group. One token, one key, the same jose options (`RS256` pinned, `typ`, `iss`, `aud`, required',
    'claims) for every verification variant; variants run in interleaved rounds in the same process.',
    '"Compared with" divides median latencies (robust on a shared machine); "per second" is count / wall time.',
    '',
    `Run of ${date}, Node ${process.versions.node}, ${cpus().length} × ${cpu}, load average ${loadavg()[0]!.toFixed(1)} at the end:`,
    '',
    '| verification | count | per second | p50 | p99 | compared with |',
    '| --- | --- | --- | --- | --- | --- |',
    row(raw, 'baseline'),
    row(direct, `${pct(direct, raw)} of raw jwtVerify`),
    row(cold, `${pct(cold, raw)} of raw jwtVerify`),
    row(honoRaw, 'baseline in Hono'),
    row(honoAuth, `${pct(honoAuth, honoRaw)} of raw jwtVerify in the same Hono app`),
    row(whole, `${pct(whole, raw)} of raw jwtVerify (the wrapper is shared by every function, not auth)`),
    row(httpVerify, 'over HTTP, for scale'),
    '',
    '| login (bcrypt cost 12, bcryptjs) | count | per second | p50 | p99 | |',
    '| --- | --- | --- | --- | --- | --- |',
    row(loginSeq, 'HTTP, loopback'),
    row(concurrent, 'HTTP, loopback'),
    '',
    'Logins are bound by bcrypt (cost 12 in pure JavaScript, ~0.4-0.6 s of one core per check, the same work for an',
    'unknown username): more requests in flight do not raise the rate on one core. Verification on the hot path',
    'does no I/O on a long-lived host: the key set and the revoked jtis are in memory (see docs/AUTH.md). A client',
    "sends the same token on every request for its lifetime: after the first, requireAuth skips the RSA check (the",
    'token verified byte for byte) and still checks expiry, that its key is in the key set, and revocation. The',
    '"first sight" row is the cost of a token the process has not seen, the whole check as jose does it plus ours.',
  ].join('\n')

  console.log(section)
  console.log(
    `\nrequireAuth: ${pct(direct, raw)} of raw jwtVerify called directly (${pct(cold, raw)} on first sight of a token), ${pct(honoAuth, honoRaw)} in the same Hono app (target >= 90 %)`,
  )

  if (values.write) {
    const file = join(import.meta.dirname, '..', 'docs', 'BENCHMARKS.md')
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      text = '# Benchmarks\n'
    }
    const start = text.indexOf('## Auth (')
    if (start >= 0) {
      const next = text.indexOf('\n## ', start + 1)
      text = text.slice(0, start) + section + '\n' + (next >= 0 ? text.slice(next) : '')
    } else {
      text = `${text.trimEnd()}\n\n${section}\n`
    }
    writeFileSync(file, text)
    console.log(`written to ${file}`)
  }
} finally {
  await host.close()
  rmSync(dataDir, { recursive: true, force: true })
}
