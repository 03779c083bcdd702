/** The command result cache over the run's database and a memory bus: read-through, dropped on retry. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dropTestSchema, makeServices, type TestServices } from '../../test/support/services.ts'
import type { AuthUser } from '../auth/types.ts'
import { RESULT_TTL_SECONDS, claimOne, createCommand, finish, getCommand, retryCommand } from './commands.ts'

let s: TestServices
const admin: AuthUser = { sub: '00000000-0000-4000-8000-000000000001', username: 'admin', roles: ['admin'], jti: 'j', exp: 0, kind: 'user' }
beforeAll(async () => {
  s = await makeServices()
  await s.db.sql`insert into ${s.db.t.agents} (agent_id, name) values ('cache-agent', 'cache-agent')`
})
afterAll(async () => {
  await dropTestSchema(s.db)
  await s.closeDb()
})

describe('result cache', () => {
  it('caches a finished command on its first read for the result TTL, and drops it on a retry', async () => {
    const created = await createCommand(s, admin, { text: 'cache me', agent_id: 'cache-agent' })
    const key = `cmd:${created.command_id}`
    expect((await getCommand(s, created.command_id)).status).toBe('queued')
    expect(await s.bus.get(key)).toBeNull() // an unfinished command is never cached

    await claimOne(s, 'cache-agent', 60, 'admin')
    await finish(s, admin, created.command_id, { kind: 'fail', body: { error: 'boom' } })
    const failed = await getCommand(s, created.command_id)
    expect(failed).toMatchObject({ status: 'failed', error: 'boom' })
    expect(JSON.parse((await s.bus.get(key))!)).toEqual(failed)
    const ttl = await s.bus.ttl(key)
    expect(ttl).toBeGreaterThan(RESULT_TTL_SECONDS - 5)
    expect(ttl).toBeLessThanOrEqual(RESULT_TTL_SECONDS)
    // A read now comes from the cache: the row changing underneath does not show.
    await s.db.sql`update ${s.db.t.commands} set error = 'changed behind the cache' where command_id = ${created.command_id}`
    expect((await getCommand(s, created.command_id)).error).toBe('boom')

    await retryCommand(s, admin, created.command_id)
    expect(await s.bus.get(key)).toBeNull()
    expect((await getCommand(s, created.command_id)).status).toBe('queued')
  })
})
