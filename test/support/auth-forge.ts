/**
 * Test-only token forgery: the tokens attackers try (alg none, HS256 keyed with the public key, other key
 * pairs, odd kids) and tokens signed with the server's real key, read from the test database and opened
 * with the host's KEK, for the cases that need a valid signature (expired, wrong iss/aud, unknown kid).
 */
import { readFileSync } from 'node:fs'
import { base64url, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWTPayload, type JWTHeaderParameters } from 'jose'
import postgres from 'postgres'
import { openPrivateKey } from '../../lib/auth/seal.ts'
import { parseEnv } from '../../lib/env.ts'
import { kekPath } from '../../local-runtime/kek.ts'
import type { TestHost } from './harness.ts'

const enc = new TextEncoder()

/** Runs `fn` with a one-off client on the host's database. */
export const withSql = async <T>(host: TestHost, fn: (sql: postgres.Sql, table: (name: string) => string) => Promise<T>): Promise<T> => {
  const sql = postgres(host.env.DATABASE_URL!, { max: 1, onnotice: () => undefined })
  try {
    return await fn(sql, (name) => `"${host.schema}"."${name}"`)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** The host's key-encryption key, as its host wrote it under NEXUS_DATA_DIR. */
export const hostKek = (host: TestHost): string => readFileSync(kekPath(host.env.NEXUS_DATA_DIR!), 'utf8').trim()

/** The private half of a signing key of the host (the active one by default), decrypted. */
export const serverPrivateJwk = async (host: TestHost, kid?: string) => {
  const row = await withSql(host, async (sql, table) => {
    const rows = kid
      ? await sql.unsafe(`select kid, private_key from ${table('signing_keys')} where kid = $1`, [kid])
      : await sql.unsafe(`select kid, private_key from ${table('signing_keys')} where status = 'active'`)
    return rows[0] as { kid: string; private_key: string } | undefined
  })
  if (!row) throw new Error('no such signing key')
  const config = parseEnv({ NEXUS_KEY_ENCRYPTION_KEY: hostKek(host) })
  return { kid: row.kid, jwk: await openPrivateKey(config, row.kid, row.private_key) }
}

export interface ForgeInput {
  claims?: JWTPayload
  header?: Partial<JWTHeaderParameters>
}

const now = () => Math.floor(Date.now() / 1000)

/** Claims a real NEXUS token would carry for `sub`, valid for an hour. */
export const goodClaims = (sub = '00000000-0000-4000-8000-000000000001'): JWTPayload => ({
  iss: 'nexus',
  aud: 'nexus',
  sub,
  username: 'forged',
  roles: ['admin'],
  jti: crypto.randomUUID(),
  iat: now(),
  exp: now() + 3600,
})

/** Signs with the server's own active key: a valid signature around whatever claims and header are given. */
export const signWithServerKey = async (host: TestHost, input: ForgeInput = {}): Promise<string> => {
  const { kid, jwk } = await serverPrivateJwk(host)
  const key = await importJWK(jwk, 'RS256')
  return new SignJWT({ ...goodClaims(), ...input.claims })
    .setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt', ...input.header } as JWTHeaderParameters)
    .sign(key)
}

/** `alg: none` with no signature, and the active kid in the header. */
export const unsignedToken = (kid: string, claims: JWTPayload = goodClaims()) =>
  `${base64url.encode(JSON.stringify({ alg: 'none', kid, typ: 'at+jwt' }))}.${base64url.encode(JSON.stringify(claims))}.`

/** HS256 keyed with the server's RSA public key in PEM: the algorithm-confusion attack. */
export const hs256WithPublicKey = async (jwks: { keys: Array<Record<string, string>> }, claims: JWTPayload = goodClaims()) => {
  const jwk = jwks.keys[0]!
  const publicKey = await importJWK({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'RS256', { extractable: true })
  const pem = await exportSPKI(publicKey as CryptoKey)
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: jwk.kid!, typ: 'at+jwt' }).sign(enc.encode(pem))
}

/** Signed by a key pair the server never saw, claiming the server's kid (or any other). */
export const otherKeyPairToken = async (kid: string, claims: JWTPayload = goodClaims()) => {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 })
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' }).sign(privateKey)
}

/** A real token with its payload rewritten (here: made admin) and the original signature kept. */
export const tamperedToken = (token: string, change: (claims: JWTPayload) => JWTPayload = (c) => ({ ...c, roles: ['admin'] })) => {
  const [h, p, s] = token.split('.')
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p!))) as JWTPayload
  return `${h}.${base64url.encode(JSON.stringify(change(claims)))}.${s}`
}

/** The decoded payload of a token (no verification). */
export const payloadOf = (token: string): JWTPayload =>
  JSON.parse(new TextDecoder().decode(base64url.decode(token.split('.')[1]!))) as JWTPayload
