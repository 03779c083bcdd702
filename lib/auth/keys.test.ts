/** Signing keys in PostgreSQL: one active key under concurrent first starts, pre-published rotation, windows, retirement. */
import { afterAll, describe, expect, it } from 'vitest'
import { createDb } from '../db/index.ts'
import { inject } from 'vitest'
import { dropTestSchema, makeServices, newSchemaName, type TestServices } from '../../test/support/services.ts'
import { activeSigningKey, CLOCK_TOLERANCE_SECONDS, ensureSigningKeys, JWKS_MAX_AGE_SECONDS, publicKeys, rotateSigningKeys } from './keys.ts'

const opened: TestServices[] = []
const services = async (schema?: string) => {
  const s = await makeServices({ schema, db: schema ? createDb(inject('databaseUrl'), { schema, max: 1 }) : undefined })
  opened.push(s)
  return s
}
afterAll(async () => {
  const schemas = new Set<string>()
  for (const s of opened) {
    if (!schemas.has(s.db.schema)) await dropTestSchema(s.db)
    schemas.add(s.db.schema)
    await s.closeDb()
  }
})

const rows = async (s: TestServices) =>
  s.db.sql<{ kid: string; status: string; verify_until: Date | null; rotated_at: Date | null; private_key: string }[]>`
    select kid, status, verify_until, rotated_at, private_key from ${s.db.t.signing_keys} order by created_at`

describe('ensureSigningKeys', () => {
  it('ends with exactly one active key and one published next key when several processes start at once', async () => {
    const schema = newSchemaName('keys')
    const first = await services(schema)
    const others = await Promise.all([1, 2, 3, 4].map(() => services(schema)))
    const results = await Promise.all([first, ...others].map((s) => ensureSigningKeys(s)))
    const all = await rows(first)
    expect(all.filter((r) => r.status === 'active')).toHaveLength(1)
    expect(all.filter((r) => r.status === 'passive' && r.verify_until === null)).toHaveLength(1)
    expect(all).toHaveLength(2)
    expect(new Set(results.map((r) => r.kid)).size).toBe(1)
    expect(results.flatMap((r) => r.created)).toHaveLength(2) // generated once, by one of them
  })

  it('changes nothing on a second start', async () => {
    const s = await services()
    await ensureSigningKeys(s)
    const before = await rows(s)
    const again = await ensureSigningKeys(s)
    expect(again.created).toEqual([])
    expect(await rows(s)).toEqual(before)
  })
})

describe('rotateSigningKeys', () => {
  it('promotes the published next key, publishes a new one, and keeps the old one verifying for TTL + max-age + skew', async () => {
    const s = await services()
    const { kid: first } = await ensureSigningKeys(s)
    const next = (await rows(s)).find((r) => r.status === 'passive')!.kid
    const published = (await publicKeys(s)).map((k) => k.kid)
    expect(published).toEqual([first, next])

    const { kid, previous } = await rotateSigningKeys(s)
    expect(kid).toBe(next)
    expect(previous).toBe(first)
    const after = await rows(s)
    const old = after.find((r) => r.kid === first)!
    expect(old.status).toBe('passive')
    const window = (old.verify_until!.getTime() - old.rotated_at!.getTime()) / 1000
    expect(window).toBe(s.config.NEXUS_TOKEN_TTL + JWKS_MAX_AGE_SECONDS + CLOCK_TOLERANCE_SECONDS)
    expect(after.filter((r) => r.status === 'active').map((r) => r.kid)).toEqual([next])
    const keys = (await publicKeys(s)).map((k) => k.kid)
    expect(keys[0]).toBe(next) // the signing key first
    expect(keys).toContain(first)
    expect(keys).toHaveLength(3)
    expect((await activeSigningKey(s)).kid).toBe(next)
  })

  it('drops a key from the JWKS after its window and wipes its private half at the next rotation', async () => {
    const s = await services()
    const { kid: first } = await ensureSigningKeys(s)
    await rotateSigningKeys(s)
    await s.db.sql`update ${s.db.t.signing_keys} set verify_until = now() - interval '1 second' where kid = ${first}`
    expect((await publicKeys(s)).map((k) => k.kid)).not.toContain(first)
    await rotateSigningKeys(s)
    const old = (await rows(s)).find((r) => r.kid === first)!
    expect(old).toMatchObject({ status: 'retired', private_key: '' })
  })

  it('makes a new key active at once where no next key was published (a database from before pre-publication)', async () => {
    const s = await services()
    const { kid: first } = await ensureSigningKeys(s)
    await s.db.sql`delete from ${s.db.t.signing_keys} where status = 'passive'`
    const { kid } = await rotateSigningKeys(s)
    expect(kid).not.toBe(first)
    expect((await activeSigningKey(s)).kid).toBe(kid)
  })

  it('publishes only public members', async () => {
    const s = await services()
    await ensureSigningKeys(s)
    for (const key of await publicKeys(s)) expect(Object.keys(key).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use'])
  })
})
