/**
 * RS256 signing keys: generated at runtime, sealed at rest, kept in `signing_keys`, rotated in the
 * pre-publish order (the next key is in the JWKS before it signs), and served as the public JWKS.
 *
 * Rows: `active` signs; `passive` with no `verify_until` is the published next key; `passive` with a
 * `verify_until` verifies the tokens it signed until then; `retired` is out of the JWKS, private key wiped.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import type { TxSql } from '../db/index.ts'
import type { Services } from '../services.ts'
import { publishAuthEvent } from './events.ts'
import { openPrivateKey, sealPrivateKey } from './seal.ts'
import { scopedState } from '../state.ts'

/** `Cache-Control: max-age` of the JWKS, also part of a retired key's verification window. */
export const JWKS_MAX_AGE_SECONDS = 300
/** Clock skew allowed when checking `exp`, also part of the verification window. */
export const CLOCK_TOLERANCE_SECONDS = 5
/** What a `kid` may look like; anything else is refused before any lookup. */
export const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
export const RSA_MODULUS_BITS = 2048

/** A public key as published in the JWKS (RFC 7517): nothing private, ever. */
export interface PublicJwk {
  kty: 'RSA'
  kid: string
  use: 'sig'
  alg: 'RS256'
  n: string
  e: string
}

interface NewKey {
  kid: string
  publicJwk: PublicJwk
  sealed: string
}

const LOCK_NAMESPACE = 7_337_002

/** Generates a 2048-bit RSA key pair; the kid is the RFC 7638 thumbprint of the public key. */
const generateKey = async (services: Services): Promise<NewKey> => {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: RSA_MODULUS_BITS, extractable: true })
  const pub = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(pub)
  const publicJwk: PublicJwk = { kty: 'RSA', kid, use: 'sig', alg: 'RS256', n: pub.n!, e: pub.e! }
  const sealed = await sealPrivateKey(services.config, kid, await exportJWK(privateKey))
  return { kid, publicJwk, sealed }
}

const insertKey = async (tx: TxSql, services: Services, key: NewKey, status: 'active' | 'passive') => {
  const { t } = services.db
  await tx`insert into ${t.signing_keys} (kid, alg, public_jwk, private_key, status)
           values (${key.kid}, 'RS256', ${tx.json(key.publicJwk as never)}, ${key.sealed}, ${status})`
}

// Serializes key changes across processes (first start, rotation) within one schema.
const lockKeys = (tx: TxSql, services: Services) =>
  tx`select pg_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(${services.db.schema}))`

/** Takes passive keys whose window has passed out of service and wipes their private halves. */
const retireExpired = (tx: TxSql, services: Services) =>
  tx`update ${services.db.t.signing_keys} set status = 'retired', private_key = ''
     where status = 'passive' and verify_until is not null and verify_until <= now()`

/**
 * Makes sure there is exactly one active key and one published next key, generating what is missing.
 * Safe when several processes start at once: they serialize on an advisory lock, and the unique partial
 * index `signing_keys_one_active` backs it. Returns the active kid.
 */
export const ensureSigningKeys = async (services: Services): Promise<{ kid: string; created: string[] }> => {
  const { sql, t } = services.db
  const created: string[] = []
  const kid = await sql.begin(async (tx) => {
    await lockKeys(tx, services)
    await retireExpired(tx, services)
    const rows = await tx<{ kid: string; status: string }[]>`
      select kid, status from ${t.signing_keys} where status = 'active' or (status = 'passive' and verify_until is null)`
    let active = rows.find((r) => r.status === 'active')?.kid
    const needNext = !rows.some((r) => r.status === 'passive')
    // Both at once: RSA generation runs off the main thread on Node, so two keys cost about one.
    const [key, next] = await Promise.all([
      active ? undefined : generateKey(services),
      needNext ? generateKey(services) : undefined,
    ])
    if (key) {
      await insertKey(tx, services, key, 'active')
      created.push((active = key.kid))
    }
    if (next) {
      await insertKey(tx, services, next, 'passive')
      created.push(next.kid)
    }
    return active!
  })
  return { kid, created }
}

/**
 * Rotates: the published next key becomes active, the active one turns passive and keeps verifying until
 * every token it signed has expired (TTL), plus the JWKS cache time and clock tolerance, and a new next key
 * is published. Returns the new active kid.
 */
export const rotateSigningKeys = async (services: Services): Promise<{ kid: string; previous: string | undefined }> => {
  const { sql, t } = services.db
  const { config } = services
  // The slow part (RSA generation) happens before taking the lock.
  const replacement = await generateKey(services)
  const windowSeconds = config.NEXUS_TOKEN_TTL + JWKS_MAX_AGE_SECONDS + CLOCK_TOLERANCE_SECONDS
  const result = await sql.begin(async (tx) => {
    await lockKeys(tx, services)
    const [current] = await tx<{ kid: string }[]>`select kid from ${t.signing_keys} where status = 'active'`
    const [next] = await tx<{ kid: string }[]>`
      select kid from ${t.signing_keys} where status = 'passive' and verify_until is null order by created_at limit 1`
    if (current)
      await tx`update ${t.signing_keys}
               set status = 'passive', rotated_at = now(), verify_until = now() + make_interval(secs => ${windowSeconds})
               where kid = ${current.kid}`
    let kid: string
    if (next) {
      await tx`update ${t.signing_keys} set status = 'active', rotated_at = now() where kid = ${next.kid}`
      await insertKey(tx, services, replacement, 'passive')
      kid = next.kid
    } else {
      // No published next key (a database from before this layout): the new key signs at once.
      await insertKey(tx, services, replacement, 'active')
      kid = replacement.kid
    }
    await retireExpired(tx, services)
    return { kid, previous: current?.kid }
  })
  await publishAuthEvent(services, { type: 'key_rotated', kid: result.kid })
  return result
}

/** The public keys that verify: active, the published next, and passive keys within their window. */
export const publicKeys = async (services: Services): Promise<PublicJwk[]> => {
  const { sql, t } = services.db
  // Only the public column is ever read here.
  const rows = await sql<{ public_jwk: PublicJwk }[]>`
    select public_jwk from ${t.signing_keys}
    where status = 'active' or (status = 'passive' and (verify_until is null or verify_until > now()))
    order by (status = 'active') desc, verify_until desc nulls first, created_at desc`
  return rows.map(({ public_jwk: j }) => ({ kty: 'RSA', kid: j.kid, use: 'sig', alg: 'RS256', n: j.n, e: j.e }))
}

interface SignerCache {
  kid?: string
  key?: CryptoKey
}

/**
 * The active signing key, decrypted and imported once per process or isolate. Every call checks which
 * kid is active (one small query), so a rotation made by any process is followed by the next token.
 */
export const activeSigningKey = async (services: Services): Promise<{ kid: string; key: CryptoKey }> => {
  const { sql, t } = services.db
  const cache = scopedState<SignerCache>(services, 'signer', () => ({}))
  let [row] = await sql<{ kid: string }[]>`select kid from ${t.signing_keys} where status = 'active'`
  if (!row) {
    // A deployment whose start-up task did not run here (a function deployed on its own): heal.
    await ensureSigningKeys(services)
    ;[row] = await sql<{ kid: string }[]>`select kid from ${t.signing_keys} where status = 'active'`
    if (!row) throw new Error('no active signing key after ensureSigningKeys')
  }
  if (cache.kid === row.kid && cache.key) return { kid: cache.kid, key: cache.key }
  const [sealedRow] = await sql<{ private_key: string }[]>`
    select private_key from ${t.signing_keys} where kid = ${row.kid} and status = 'active'`
  if (!sealedRow) return activeSigningKey(services) // rotated between the two queries
  const jwk: JWK = await openPrivateKey(services.config, row.kid, sealedRow.private_key)
  const key = (await importJWK(jwk, 'RS256')) as CryptoKey
  cache.kid = row.kid
  cache.key = key
  return { kid: row.kid, key }
}

/**
 * Start-up check, never from a cache: the active key opens with this process's KEK, so a mismatch stops
 * start-up with a clear message instead of failing logins later.
 */
export const checkActiveKeyOpens = async (services: Services): Promise<void> => {
  const { sql, t } = services.db
  const [row] = await sql<{ kid: string; private_key: string }[]>`
    select kid, private_key from ${t.signing_keys} where status = 'active'`
  if (row) await importJWK(await openPrivateKey(services.config, row.kid, row.private_key), 'RS256')
}
