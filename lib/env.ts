/** Environment: parsed and validated once with zod; a bad value stops start-up with one clear line. */
import * as z from 'zod'
import { parseModelsFile } from './ai/models-file.ts'
import { parseUpstreams } from './sovereignty.ts'

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v)
const opt = <T extends z.ZodType>(schema: T) => z.preprocess(blankToUndefined, schema.optional())
const withDefault = <T extends z.ZodType>(schema: T, fallback: z.input<T>) =>
  z.preprocess((v) => blankToUndefined(v) ?? fallback, schema)

const intIn = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))

const urlWith = (protocols: string[], what: string) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol)
    } catch {
      return false
    }
  }, `must be a ${what} URL (${protocols.map((p) => p + '//').join(' or ')})`)

const commaList = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
)

// 32 random bytes in standard base64, e.g. from `openssl rand -base64 32`. atob exists on every runtime.
const base64Key32 = z.string().refine((v) => {
  try {
    return atob(v.trim()).length === 32
  } catch {
    return false
  }
}, 'must be 32 random bytes in base64 (openssl rand -base64 32)')

const Identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier')

export const LogLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent'])
export type LogLevel = z.infer<typeof LogLevel>

export const EnvSchema = z
  .object({
    PORT: withDefault(intIn(0, 65535), '8080'),
    HOST: withDefault(z.string().min(1), '127.0.0.1'),
    DATABASE_URL: opt(urlWith(['postgres:', 'postgresql:'], 'PostgreSQL')),
    REDIS_URL: opt(urlWith(['redis:', 'rediss:'], 'Redis')),
    UPSTASH_REDIS_REST_URL: opt(urlWith(['http:', 'https:'], 'HTTP')),
    UPSTASH_REDIS_REST_TOKEN: opt(z.string().min(1)),
    OLLAMA_BASE_URL: withDefault(z.string(), 'http://127.0.0.1:11434').transform((v, ctx) => {
      const { urls, error } = parseUpstreams(v)
      if (error) {
        ctx.addIssue({ code: 'custom', message: error })
        return z.NEVER
      }
      return urls
    }),
    NEXUS_MASTER_KEY: opt(z.string().min(16, 'must be at least 16 characters')),
    NEXUS_ADMIN_USERNAME: withDefault(z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 _ . @ -'), 'admin'),
    NEXUS_ADMIN_PASSWORD: opt(z.string().min(8, 'must be at least 8 characters')),
    NEXUS_JWT_ISSUER: withDefault(z.string().min(1), 'nexus'),
    NEXUS_JWT_AUDIENCE: withDefault(z.string().min(1), 'nexus'),
    NEXUS_TOKEN_TTL: withDefault(intIn(60, 30 * 86400), '86400'),
    NEXUS_MODELS_FILE: opt(z.string().min(1)),
    // The models file's content, for runtimes without a filesystem (the workerd host passes it; docs/GATEWAY.md).
    NEXUS_MODELS_JSON: opt(z.string().min(2)),
    NEXUS_CORS_ORIGINS: withDefault(commaList, '').pipe(
      z.array(z.union([z.literal('*'), urlWith(['http:', 'https:'], 'origin')])),
    ),
    NEXUS_DATA_DIR: withDefault(z.string().min(1), './data'),
    LOG_LEVEL: withDefault(LogLevel, 'info'),
    // Beyond the contract (documented in docs/CONFIGURATION.md):
    NEXUS_DB_SCHEMA: withDefault(Identifier, 'nexus_core'),
    NEXUS_BUS_PREFIX: withDefault(z.string().regex(/^[A-Za-z0-9:_-]{0,64}$/, 'must be up to 64 of A-Z a-z 0-9 : _ -'), ''),
    NEXUS_MAX_BODY_BYTES: withDefault(intIn(1024, 64 * 1024 * 1024), String(1024 * 1024)),
    NEXUS_AUTH_JWKS_URL: opt(urlWith(['http:', 'https:'], 'HTTP')),
    NEXUS_DB_POOL_MAX: withDefault(intIn(1, 200), '20'),
    NEXUS_AGENT_TTL: withDefault(intIn(2, 86400), '60'),
    // The dashboard's API when the dashboard is deployed apart from it (docs/DASHBOARD.md); unset = its own origin.
    NEXUS_DASHBOARD_API_BASE: opt(
      urlWith(['http:', 'https:'], 'HTTP').refine((v) => {
        try {
          const u = new URL(v)
          return !u.search && !u.hash && !u.username && !u.password
        } catch {
          return true // reported by the check above
        }
      }, 'must be a plain http(s) URL (no credentials, query or fragment)'),
    ),
    // Auth (documented in docs/AUTH.md):
    NEXUS_KEY_ENCRYPTION_KEY: opt(base64Key32),
    NEXUS_LOGIN_LOCK_SECONDS: withDefault(intIn(1, 86400), '900'),
    NEXUS_LOGIN_MAX_FAILURES: withDefault(intIn(1, 1000), '10'),
    NEXUS_LOGIN_MAX_CLIENT_FAILURES: withDefault(intIn(1, 100_000), '50'),
    NEXUS_LOGIN_RATE_LIMIT: withDefault(intIn(1, 1_000_000), '60'),
    NEXUS_VERIFY_RATE_LIMIT: withDefault(intIn(1, 1_000_000), '600'),
  })
  .superRefine((env, ctx) => {
    if (env.NEXUS_MODELS_JSON !== undefined) {
      const parsed = parseModelsFile(env.NEXUS_MODELS_JSON, env.OLLAMA_BASE_URL)
      if (parsed.error !== undefined) ctx.addIssue({ code: 'custom', path: ['NEXUS_MODELS_JSON'], message: parsed.error })
    }
    if (Boolean(env.UPSTASH_REDIS_REST_URL) !== Boolean(env.UPSTASH_REDIS_REST_TOKEN))
      ctx.addIssue({
        code: 'custom',
        path: [env.UPSTASH_REDIS_REST_URL ? 'UPSTASH_REDIS_REST_TOKEN' : 'UPSTASH_REDIS_REST_URL'],
        message: 'UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN go together; set both or neither',
      })
  })

export type Config = z.infer<typeof EnvSchema>

/** A bad environment: `message` is one line naming the variable and what is wrong. */
export class ConfigError extends Error {
  readonly variable: string
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
    this.variable = variable
  }
}

const cache = new WeakMap<object, Config>()

/**
 * Parses the environment (process.env on Node, the bindings on workerd). Results are cached per
 * bindings object, so a host that passes the same object on every request parses it once.
 * Throws {@link ConfigError} on the first bad variable. Never echoes the value, which may be a secret.
 */
export const parseEnv = (bindings: Record<string, unknown>): Config => {
  const hit = cache.get(bindings)
  if (hit) return hit
  const strings: Record<string, string> = {}
  for (const key of Object.keys(EnvSchema.shape ?? {})) {
    const v = bindings[key]
    if (typeof v === 'string') strings[key] = v
  }
  const result = EnvSchema.safeParse(strings)
  if (!result.success) {
    const issue = result.error.issues[0]!
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message)
  }
  cache.set(bindings, result.data)
  return result.data
}
