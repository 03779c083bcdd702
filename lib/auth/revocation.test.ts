/** Revocation across processes: PostgreSQL is the record, the bus is the fast path, memory is the hot path. */
import { afterAll, describe, expect, it } from 'vitest'
import { inject } from 'vitest'
import { createMemoryBus } from '../bus/index.ts'
import { createDb } from '../db/index.ts'
import { dropTestSchema, makeServices, newSchemaName, type TestServices } from '../../test/support/services.ts'
import { isRevoked, revokedKey, revokeToken } from './revocation.ts'

const opened: TestServices[] = []
afterAll(async () => {
  await dropTestSchema(opened[0]!.db)
  for (const s of opened) await s.closeDb()
})

const schema = newSchemaName('revoke')
const make = async (options: { longLived?: boolean; bus?: ReturnType<typeof createMemoryBus> } = {}) => {
  const s = await makeServices({ schema, db: createDb(inject('databaseUrl'), { schema, max: 1 }), ...options })
  opened.push(s)
  return s
}

const session = async (s: TestServices) => {
  const [user] = await s.db.sql<{ id: string }[]>`
    insert into ${s.db.t.users} (username, password_hash) values (${`u${Math.random().toString(36).slice(2, 8)}`}, 'x') returning id`
  const jti = crypto.randomUUID()
  const exp = Math.floor(Date.now() / 1000) + 3600
  await s.db.sql`insert into ${s.db.t.human_sessions} (jti, user_id, kid, expires_at)
                 values (${jti}, ${user!.id}, 'k', to_timestamp(${exp}))`
  return { jti, exp }
}

describe('revocation', () => {
  it('is seen at once by the revoking process, through memory', async () => {
    const a = await make({ longLived: true })
    const { jti, exp } = await session(a)
    expect(await isRevoked(a, jti, exp)).toBe(false)
    await revokeToken(a, jti, exp)
    expect(await isRevoked(a, jti, exp)).toBe(true)
  })

  it('reaches a process started later from PostgreSQL alone (its bus never heard of it)', async () => {
    const a = await make({ longLived: true })
    const { jti, exp } = await session(a)
    await revokeToken(a, jti, exp)
    const later = await make({ longLived: true }) // its own memory bus: nothing on it
    expect(await isRevoked(later, jti, exp)).toBe(true)
    const perRequest = await make() // workerd-style
    expect(await isRevoked(perRequest, jti, exp)).toBe(true)
  })

  it('reaches a running process over the bus subscription, without waiting for a sync', async () => {
    const bus = createMemoryBus()
    const a = await make({ longLived: true, bus })
    const b = await make({ longLived: true, bus })
    const { jti, exp } = await session(a)
    expect(await isRevoked(b, jti, exp)).toBe(false) // b synced and subscribed
    await revokeToken(a, jti, exp)
    await new Promise((r) => setTimeout(r, 10)) // bus delivery is asynchronous
    expect(await isRevoked(b, jti, exp)).toBe(true)
  })

  it('on a long-lived host whose subscription is down, reads the bus key too', async () => {
    const memory = createMemoryBus()
    const bus = { ...memory, subscribe: () => Promise.reject(new Error('Redis is down')) }
    const a = await make({ longLived: true, bus })
    const { jti, exp } = await session(a)
    expect(await isRevoked(a, jti, exp)).toBe(false)
    await memory.set(revokedKey(jti), '1', { ttlSeconds: 60 }) // another process's logout, PostgreSQL not yet synced
    expect(await isRevoked(a, jti, exp)).toBe(true)
    expect(a.logs.some((l) => l.includes('could not subscribe to auth events'))).toBe(true)
  })

  it('per request (workerd), reads the bus key', async () => {
    const bus = createMemoryBus()
    const a = await make({ bus })
    const { jti, exp } = await session(a)
    expect(await isRevoked(a, jti, exp)).toBe(false)
    await bus.set(revokedKey(jti), '1', { ttlSeconds: 60 }) // as another process's logout would
    expect(await isRevoked(a, jti, exp)).toBe(true)
  })

  it('keeps the bus key until the token expires', async () => {
    const bus = createMemoryBus()
    const a = await make({ bus })
    const { jti, exp } = await session(a)
    await revokeToken(a, jti, exp)
    const ttl = await bus.ttl(revokedKey(jti))
    expect(ttl).toBeGreaterThan(3590)
    expect(ttl).toBeLessThanOrEqual(3600 + 5 + 1)
  })
})
