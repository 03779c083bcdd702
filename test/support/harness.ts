/**
 * The integration-test harness: starts a host (Node or workerd) on a schema and bus prefix of its own,
 * against the real PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set and the embedded
 * defaults otherwise, and runs the same test body once per runtime.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, inject } from 'vitest'
import type { FunctionSpec, ServiceGroup } from '../../workers.config.ts'
import { startNodeHost } from '../../local-runtime/node/host.ts'
import { startWorkerdHost } from '../../local-runtime/workerd/host.ts'

export type Runtime = 'node' | 'workerd'

/** Runtimes to test; `NEXUS_TEST_RUNTIMES=node` narrows a local run. */
export const RUNTIMES: Runtime[] = (process.env.NEXUS_TEST_RUNTIMES ?? 'node,workerd')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is Runtime => s === 'node' || s === 'workerd')

export const usingRealRedis = Boolean(process.env.REDIS_URL)

/**
 * With a real PostgreSQL, workerd hosts may reach it through a session-mode PgBouncer
 * (`NEXUS_TEST_WORKERD_DATABASE_URL`, started by scripts/pgbouncer.sh; CI does): workerd opens a
 * connection per request, and without a pooler each one starts a PostgreSQL server process, which is
 * what docs/RUNTIMES.md tells a workerd deployment to avoid. Node hosts always connect directly, and
 * test/foundation/workerd-direct.test.ts keeps a workerd host on the direct path.
 */
export const workerdDatabaseUrl = process.env.DATABASE_URL ? process.env.NEXUS_TEST_WORKERD_DATABASE_URL : undefined

export interface HostOptions {
  /** Extra environment for the host (overrides the harness defaults). */
  env?: Record<string, string>
  groups?: ServiceGroup[]
  functions?: string[]
  /** Test-only functions to serve beside the real ones (files under test/fixtures/). */
  extraFunctions?: FunctionSpec[]
  /**
   * Keep the schema and data directory on close, so a second host given the same NEXUS_DB_SCHEMA and
   * NEXUS_DATA_DIR (in `env`) restarts on the same data. The test then drops them (dropSchema, rmSync).
   */
  keepData?: boolean
}

export interface TestHost {
  runtime: Runtime
  url: string
  env: Record<string, string>
  schema: string
  /** Every log line the host wrote (JSON lines), for tests that scan logs. */
  logs: string[]
  fetch(path: string, init?: RequestInit): Promise<Response>
  /**
   * Sends JSON (object bodies are serialized) and returns the status, headers and parsed body.
   * `any` by default because tests read arbitrary response JSON and assert on it.
   */
  // biome-ignore lint/suspicious/noExplicitAny: see above
  json<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<JsonResult<T>>
  close(): Promise<void>
}

export interface JsonResult<T> {
  status: number
  headers: Headers
  body: T
  text: string
}

const randomId = () => Math.random().toString(36).slice(2, 10)

/** The admin every test host creates at first start (NEXUS_ADMIN_USERNAME defaults to `admin`). */
export const TEST_ADMIN_USERNAME = 'admin'
export const TEST_ADMIN_PASSWORD = 'test-admin-password-1'

/** The base environment every test host gets: its own schema, bus prefix and data dir, a free port. */
export const baseEnv = (schema: string, dataDir: string): Record<string, string> => {
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    DATABASE_URL: inject('databaseUrl'),
    NEXUS_DB_SCHEMA: schema,
    NEXUS_BUS_PREFIX: `${schema}:`,
    NEXUS_DATA_DIR: dataDir,
    // A closed port: no test reaches a real Ollama by accident.
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    // A known admin password (so no generated one is printed) and login/verify limits no suite reaches
    // by accident; the auth tests that exercise the limits set their own.
    NEXUS_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
    NEXUS_LOGIN_RATE_LIMIT: '100000',
    NEXUS_VERIFY_RATE_LIMIT: '100000',
  }
  if (process.env.REDIS_URL) env.REDIS_URL = process.env.REDIS_URL
  return env
}

/** Starts one host on a fresh schema. */
export const startTestHost = async (runtime: Runtime, options: HostOptions = {}): Promise<TestHost> => {
  const schema = options.env?.NEXUS_DB_SCHEMA ?? `t_${randomId()}`
  const dataDir = options.env?.NEXUS_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'nexus-test-'))
  const env = { ...baseEnv(schema, dataDir), ...options.env }
  if (runtime === 'workerd' && workerdDatabaseUrl && !options.env?.DATABASE_URL) env.DATABASE_URL = workerdDatabaseUrl
  const logs: string[] = []
  const logSink = (line: string) => {
    logs.push(line)
  }
  const host =
    runtime === 'node'
      ? await startNodeHost({ env, groups: options.groups, functions: options.functions, extraFunctions: options.extraFunctions, logSink })
      : await startWorkerdHost({ env, groups: options.groups, functions: options.functions, extraFunctions: options.extraFunctions, logSink })
  const fetchPath = (path: string, init?: RequestInit) => fetch(new URL(path, host.url), init)
  return {
    runtime,
    url: host.url,
    env,
    schema,
    logs,
    fetch: fetchPath,
    async json(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } }
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body)
        ;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
      }
      const res = await fetchPath(path, init)
      const text = await res.text()
      let parsed: unknown = undefined
      try {
        parsed = text ? JSON.parse(text) : undefined
      } catch {
        parsed = undefined
      }
      return { status: res.status, headers: res.headers, body: parsed as never, text }
    },
    async close() {
      await host.close()
      if (options.keepData) return
      await dropSchema(env.DATABASE_URL!, schema)
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** Drops a test schema so runs leave nothing behind. */
export const dropSchema = async (url: string, schema: string) => {
  const sql = postgres(url, { max: 1, onnotice: () => undefined })
  try {
    await sql.unsafe(`drop schema if exists "${schema}" cascade`)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/**
 * Declares `body` once per runtime, each with a host started before and closed after its tests.
 * `host()` returns the running host inside tests.
 */
export const describeRuntimes = (
  title: string,
  body: (host: () => TestHost, runtime: Runtime) => void,
  options: HostOptions = {},
) => {
  for (const runtime of RUNTIMES) {
    describe(`${title} [${runtime}]`, () => {
      let current: TestHost | undefined
      beforeAll(async () => {
        current = await startTestHost(runtime, options)
      })
      afterAll(async () => {
        await current?.close()
      })
      body(() => {
        if (!current) throw new Error('host not started')
        return current
      }, runtime)
    })
  }
}

/** Asserts the contract's error envelope and returns its `error` object. */
export const expectEnvelope = (
  res: JsonResult<{ error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } }>,
  status: number,
  code?: string,
) => {
  const problems: string[] = []
  if (res.status !== status) problems.push(`status ${res.status}, wanted ${status}`)
  const err = res.body?.error
  if (!err || typeof err.message !== 'string' || typeof err.type !== 'string' || !('param' in err))
    problems.push(`not the error envelope: ${res.text.slice(0, 300)}`)
  if (code && err?.code !== code) problems.push(`code ${String(err?.code)}, wanted ${code}`)
  if (!res.headers.get('x-request-id')) problems.push('no x-request-id header')
  if (/\n\s+at /.test(res.text)) problems.push('a stack trace leaked into the response')
  if (problems.length) throw new Error(problems.join('; '))
  return err!
}

// ---- Auth helpers: tokens for tests of every function behind requireAuth / requireRole. ----

export type TestRole = 'admin' | 'operator' | 'agent' | 'viewer'

export interface TestUser {
  id: string
  username: string
  password: string
  roles: TestRole[]
}

/** `{ authorization: 'Bearer <token>' }` for host.json / host.fetch headers. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/** Logs in and returns the access token; throws with the response when the login is refused. */
export const login = async (host: TestHost, username: string, password: string): Promise<string> => {
  const res = await host.json('POST', '/api/v1/auth/login', { username, password })
  if (res.status !== 200 || typeof res.body?.access_token !== 'string') {
    // The host's recent warnings and errors (already redacted) say why, when the response cannot.
    const recent = host.logs.filter((l) => /"level":"(warn|error)"/.test(l)).slice(-10)
    throw new Error(
      `login as ${username} answered ${res.status}: ${res.text.slice(0, 300)}${recent.length ? `\nhost warnings and errors:\n${recent.join('\n')}` : ''}`,
    )
  }
  return res.body.access_token as string
}

// Tokens per host and role: a login costs a bcrypt check (~0.5 s), so each is made once per host.
const tokenCache = new WeakMap<TestHost, Map<string, Promise<string>>>()
const cached = (host: TestHost, key: string, make: () => Promise<string>) => {
  let perHost = tokenCache.get(host)
  if (!perHost) tokenCache.set(host, (perHost = new Map()))
  let token = perHost.get(key)
  if (!token) {
    token = make()
    perHost.set(key, token)
    token.catch(() => perHost!.delete(key))
  }
  return token
}

/** The bootstrap admin's access token (cached per host: do not log it out; use `login` for that). */
export const adminToken = (host: TestHost): Promise<string> =>
  cached(host, 'admin', () => login(host, TEST_ADMIN_USERNAME, TEST_ADMIN_PASSWORD))

/** Creates a user with these roles through the API (as the admin) and returns it with its password. */
export const createUser = async (
  host: TestHost,
  roles: TestRole[],
  options: { username?: string; password?: string } = {},
): Promise<TestUser> => {
  const username = options.username ?? `${roles.join('-') || 'user'}-${randomId()}`
  const password = options.password ?? `pw-${randomId()}-${randomId()}`
  const res = await host.json('POST', '/api/v1/auth/users', { username, password, roles }, bearer(await adminToken(host)))
  if (res.status !== 201) throw new Error(`creating user ${username} answered ${res.status}: ${res.text.slice(0, 300)}`)
  return { id: res.body.id as string, username, password, roles }
}

/**
 * An access token for a user holding exactly `role`, created on first use (cached per host and role:
 * do not log it out). `loginAs(host, 'admin')` is the bootstrap admin.
 */
export const loginAs = (host: TestHost, role: TestRole): Promise<string> =>
  role === 'admin'
    ? adminToken(host)
    : cached(host, role, async () => {
        const user = await createUser(host, [role])
        return login(host, user.username, user.password)
      })
