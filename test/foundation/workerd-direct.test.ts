/**
 * When the suite's workerd hosts reach PostgreSQL through PgBouncer (NEXUS_TEST_WORKERD_DATABASE_URL, as in
 * CI), this keeps one workerd host on a direct connection: a connection per request, no pooler, the way a
 * deployment without one runs. Without that variable every workerd host is already direct.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { bearer, loginAs, RUNTIMES, startTestHost, workerdDatabaseUrl, type TestHost } from '../support/harness.ts'

describe.skipIf(!workerdDatabaseUrl || !RUNTIMES.includes('workerd'))('workerd straight to PostgreSQL, no pooler', () => {
  let host: TestHost
  beforeAll(async () => {
    host = await startTestHost('workerd', { groups: ['auth', 'cortex'], env: { DATABASE_URL: inject('databaseUrl') } })
  })
  afterAll(async () => {
    await host?.close()
  })

  it('is not the pooled URL', () => {
    expect(host.env.DATABASE_URL).toBe(inject('databaseUrl'))
    expect(host.env.DATABASE_URL).not.toBe(workerdDatabaseUrl)
  })

  it('logs in, and takes a command through create, claim, complete and GET', async () => {
    const agent = await loginAs(host, 'agent')
    const operator = await loginAs(host, 'operator')
    const id = `direct-${Math.random().toString(36).slice(2, 8)}`
    expect((await host.json('POST', '/api/v1/agents/register', { agent_id: id }, bearer(agent))).status).toBe(201)
    const created = await host.json('POST', '/api/v1/commands', { text: 'direct', agent_id: id }, bearer(operator))
    expect(created.status).toBe(201)
    const claimed = await host.json('POST', `/api/v1/agents/${id}/commands/claim`, undefined, bearer(agent))
    expect(claimed.status).toBe(200)
    expect(claimed.body.command_id).toBe(created.body.command_id)
    const done = await host.json(
      'POST',
      `/api/v1/commands/${created.body.command_id}/complete`,
      { result: 'ok', lease_token: claimed.body.lease_token },
      bearer(agent),
    )
    expect(done.status).toBe(200)
    const got = await host.json('GET', `/api/v1/commands/${created.body.command_id}`, undefined, bearer(operator))
    expect(got.body).toMatchObject({ status: 'completed', result: 'ok' })
  })
})
