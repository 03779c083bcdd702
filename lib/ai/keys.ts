/**
 * Gateway keys: `nx-` + 32 random bytes (base64url), stored only as a SHA-256 hash (a key this random
 * needs no slow hash), shown once at creation. Lookups by hash are cached briefly per process or isolate.
 */
// node:crypto's synchronous hash: Node has it, workerd has it with nodejs_compat. WebCrypto's digest is
// asynchronous, and its hop through the thread pool cost ~0.3 ms per request under load.
import { createHash } from 'node:crypto'
import type { Db } from '../db/index.ts'
import type { Services } from '../services.ts'
import { TtlCache } from '../state.ts'
import { gatewayState } from './state.ts'

export const KEY_PREFIX = 'nx-'
/** `nx-` and 43 base64url characters (32 bytes). */
export const KEY_PATTERN = /^nx-[A-Za-z0-9_-]{43}$/
/**
 * How long a looked-up key (or its absence) is kept. Changes made through the key API apply at once
 * everywhere regardless: they bump an epoch on the bus, which every lookup checks.
 */
export const KEY_CACHE_TTL_MS = 30_000
/** The bus key whose value changes whenever a key is revoked or changed. */
export const KEYS_EPOCH = 'gw:keys:epoch'
const KEY_CACHE_MAX = 10_000

/** A key as stored, without its hash. */
export interface GatewayKey {
  id: string
  name: string
  key_prefix: string
  allowed_models: string[] | null
  rpm_limit: number | null
  tpm_limit: number | null
  budget_tokens: number | null
  used_tokens: number
  created_by: string | null
  created_at: string
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
}

const base64url = (bytes: Uint8Array) => {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** A new key: 256 bits from the platform's CSPRNG. */
export const generateKey = (): string => KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)))

/** The stored form of a key: SHA-256, hex. */
export const hashKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex')

/** What the key list shows of a key: its prefix and the first characters, never enough to use it. */
export const displayPrefix = (key: string) => key.slice(0, KEY_PREFIX.length + 6)

/**
 * Compares a presented value with a secret in time that depends only on the secret's length, never on
 * where the two differ or on the presented value's length.
 */
export const timingSafeEqualStrings = (presented: string, secret: string): boolean => {
  let diff = presented.length ^ secret.length
  for (let i = 0; i < secret.length; i++) diff |= (presented.charCodeAt(i % Math.max(1, presented.length)) || 0) ^ secret.charCodeAt(i)
  return diff === 0
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)

interface KeyRow {
  id: string
  name: string
  key_prefix: string
  allowed_models: string[] | null
  rpm_limit: number | null
  tpm_limit: number | null
  budget_tokens: number | null
  used_tokens: number
  created_by: string | null
  created_at: Date
  expires_at: Date | null
  revoked_at: Date | null
  last_used_at: Date | null
}

const fromRow = (r: KeyRow): GatewayKey => ({
  id: r.id,
  name: r.name,
  key_prefix: r.key_prefix,
  allowed_models: r.allowed_models,
  rpm_limit: r.rpm_limit,
  tpm_limit: r.tpm_limit,
  budget_tokens: r.budget_tokens,
  used_tokens: Number(r.used_tokens),
  created_by: r.created_by,
  created_at: r.created_at.toISOString(),
  expires_at: iso(r.expires_at),
  revoked_at: iso(r.revoked_at),
  last_used_at: iso(r.last_used_at),
})

const COLUMNS = `id, name, key_prefix, allowed_models, rpm_limit, tpm_limit, budget_tokens, used_tokens, created_by,
  created_at, expires_at, revoked_at, last_used_at`

export interface NewKey {
  name: string
  allowed_models?: string[] | null
  rpm_limit?: number | null
  tpm_limit?: number | null
  budget_tokens?: number | null
  expires_at?: Date | null
}

/** Creates a key and returns it with its secret, which is never stored and never shown again. */
export const createKey = async (db: Db, input: NewKey, createdBy: string | null): Promise<{ key: GatewayKey; secret: string }> => {
  const secret = generateKey()
  const hash = hashKey(secret)
  // created_by names a user only when the creator is one (the master key is no user).
  const [row] = await db.sql<KeyRow[]>`
    insert into ${db.t.gateway_keys}
      (name, key_hash, key_prefix, allowed_models, rpm_limit, tpm_limit, budget_tokens, expires_at, created_by)
    values (${input.name}, ${hash}, ${displayPrefix(secret)}, ${input.allowed_models ?? null}, ${input.rpm_limit ?? null},
      ${input.tpm_limit ?? null}, ${input.budget_tokens ?? null}, ${input.expires_at ?? null},
      (select id from ${db.t.users} where id::text = ${createdBy ?? ''}))
    returning ${db.sql.unsafe(COLUMNS)}`
  return { key: fromRow(row!), secret }
}

/** Every key, newest first (revoked ones included, flagged by `revoked_at`). */
export const listKeys = async (db: Db, includeRevoked = true): Promise<GatewayKey[]> => {
  const rows = await db.sql<KeyRow[]>`
    select ${db.sql.unsafe(COLUMNS)} from ${db.t.gateway_keys}
    ${includeRevoked ? db.sql`` : db.sql`where revoked_at is null`}
    order by created_at desc, id`
  return rows.map(fromRow)
}

export const getKey = async (db: Db, id: string): Promise<GatewayKey | undefined> => {
  const [row] = await db.sql<KeyRow[]>`select ${db.sql.unsafe(COLUMNS)} from ${db.t.gateway_keys} where id = ${id}`
  return row ? fromRow(row) : undefined
}

export type KeyPatch = Partial<Omit<NewKey, 'expires_at'>> & { expires_at?: Date | null }

/** Changes a key's name or limits; undefined fields stay as they are. */
export const updateKey = async (db: Db, id: string, patch: KeyPatch): Promise<GatewayKey | undefined> => {
  const set: Record<string, unknown> = {}
  for (const k of ['name', 'allowed_models', 'rpm_limit', 'tpm_limit', 'budget_tokens', 'expires_at'] as const)
    if (patch[k] !== undefined) set[k] = patch[k]
  if (Object.keys(set).length === 0) return getKey(db, id)
  const [row] = await db.sql<KeyRow[]>`
    update ${db.t.gateway_keys} set ${db.sql(set)} where id = ${id} returning ${db.sql.unsafe(COLUMNS)}`
  return row ? fromRow(row) : undefined
}

/** Revokes a key (idempotent: the first revocation time stays). */
export const revokeKey = async (db: Db, id: string): Promise<GatewayKey | undefined> => {
  const [row] = await db.sql<KeyRow[]>`
    update ${db.t.gateway_keys} set revoked_at = coalesce(revoked_at, now()) where id = ${id}
    returning ${db.sql.unsafe(COLUMNS)}`
  return row ? fromRow(row) : undefined
}

interface CachedKey {
  key: GatewayKey | null
  /** The keys epoch the entry was read under. */
  epoch: string | null
}

const cacheOf = (services: Services) =>
  gatewayState(services, 'keys', () => new TtlCache<CachedKey>(KEY_CACHE_TTL_MS, KEY_CACHE_MAX))

const NO_EPOCH = Symbol('bus unreachable')

/**
 * The key a caller presented, or undefined when it is not one (malformed, unknown). Revoked and
 * expired keys are returned as stored: the caller decides. A cached lookup is used only while the
 * keys epoch on the bus is unchanged (one bus read); with the bus unreachable, the database decides.
 */
export const findKey = async (services: Services, presented: string): Promise<GatewayKey | undefined> => {
  if (!KEY_PATTERN.test(presented)) return undefined
  const hash = hashKey(presented)
  const epoch = await services.bus.get(KEYS_EPOCH).catch(() => NO_EPOCH)
  const cache = cacheOf(services)
  const hit = cache.get(hash)
  if (hit !== undefined && hit.epoch === epoch) return hit.key ?? undefined
  const { db } = services
  const [row] = await db.sql<KeyRow[]>`select ${db.sql.unsafe(COLUMNS)} from ${db.t.gateway_keys} where key_hash = ${hash}`
  const key = row ? fromRow(row) : null
  if (typeof epoch !== 'symbol') cache.set(hash, { key, epoch })
  return key ?? undefined
}

/**
 * After a key was revoked or changed: every process and isolate reads keys from the database again on
 * their next lookup (the epoch moved), this one at once even if the bus is down.
 */
export const keysChanged = async (services: Services): Promise<void> => {
  cacheOf(services).clear()
  await services.bus.incr(KEYS_EPOCH).catch((err) => services.log.warn('could not announce a gateway key change on the bus', { err }))
}
