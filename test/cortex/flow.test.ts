/** The seed's command flow end to end, on each runtime: Redis announcement, claim, complete, live event, GET. */
import { expect, it } from 'vitest'
import { bearer, createUser, describeRuntimes, login, loginAs, usingRealRedis } from '../support/harness.ts'
import { openEventsSse, openEventsWs, subscribeRedis } from '../support/live.ts'

const uid = () => Math.random().toString(36).slice(2, 8)

describeRuntimes('cortex: the seed flow', (host) => {
  it('registers an agent (201, then 200 when known) and lists it online', async () => {
    const agent = await loginAs(host(), 'agent')
    const id = `shadow-${uid()}`
    const first = await host().json('POST', '/api/v1/agents/register', { agent_id: id, name: 'Shadow', capabilities: ['analysis'] }, bearer(agent))
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject({ agent_id: id, name: 'Shadow', status: 'online', capabilities: ['analysis'] })
    const again = await host().json('POST', '/api/v1/agents/register', { agent_id: id }, bearer(agent))
    expect(again.status).toBe(200)
    expect(again.body.name).toBe('Shadow')
    const list = await host().json('GET', '/api/v1/agents', undefined, bearer(await loginAs(host(), 'viewer')))
    expect(list.status).toBe(200)
    const mine = list.body.agents.find((a: { agent_id: string }) => a.agent_id === id)
    expect(mine).toMatchObject({ agent_id: id, name: 'Shadow', status: 'online', capabilities: ['analysis'], last_seen_at: expect.any(String) })
  })

  it('delivers a command to a subscribed agent, completes it, streams command_completed, and GET shows the result', async () => {
    const agentToken = await loginAs(host(), 'agent')
    const operator = await loginAs(host(), 'operator')
    const id = `seed-${uid()}`
    await host().json('POST', '/api/v1/agents/register', { agent_id: id }, bearer(agentToken))
    const ws = await openEventsWs(host().url, operator)
    const redis = usingRealRedis ? await subscribeRedis(process.env.REDIS_URL!, `${host().env.NEXUS_BUS_PREFIX}nexus:commands`) : undefined
    try {
      const created = await host().json('POST', '/api/v1/commands', { text: 'Analyze data', agent_id: id }, bearer(operator))
      expect(created.status).toBe(201)
      expect(created.body).toMatchObject({ command_id: expect.any(String), status: 'queued', agent_id: id, text: 'Analyze data' })
      const commandId = created.body.command_id as string
      let lease: string | undefined

      if (redis) {
        // The agent's way in the seed: SUBSCRIBE nexus:commands, then complete straight from queued.
        const [announced] = await redis.waitFor(1)
        expect(announced).toMatchObject({ command_id: commandId, agent_id: id, text: 'Analyze data' })
      } else {
        const claimed = await host().json('POST', `/api/v1/agents/${id}/commands/claim`, undefined, bearer(agentToken))
        expect(claimed.status).toBe(200)
        expect(claimed.body).toMatchObject({ command_id: commandId, status: 'dispatched', lease_token: expect.any(String) })
        lease = claimed.body.lease_expires_at as string
      }
      const done = await host().json(
        'POST',
        `/api/v1/commands/${commandId}/complete`,
        { result: 'Analysis done', data: { rows: 3 } },
        bearer(agentToken),
      )
      expect(done.status).toBe(200)
      expect(done.body).toMatchObject({ status: 'completed', result: 'Analysis done', data: { rows: 3 } })

      const events = await ws.waitFor(usingRealRedis ? 2 : 3)
      const completed = events.find((e) => e.type === 'command_completed')
      expect(completed).toMatchObject({ type: 'command_completed', command_id: commandId, agent_id: id, status: 'completed' })
      expect(events.map((e) => e.type)).toEqual(
        usingRealRedis ? ['command_created', 'command_completed'] : ['command_created', 'command_dispatched', 'command_completed'],
      )
      const ids = events.map((e) => e.id)
      expect([...ids].sort((a, b) => a - b)).toEqual(ids)
      if (lease)
        // The claim's event carries the command as the claim left it, its lease to the millisecond.
        expect(events.find((e) => e.type === 'command_dispatched')).toEqual({
          id: expect.any(Number),
          type: 'command_dispatched',
          command_id: commandId,
          agent_id: id,
          status: 'dispatched',
          attempts: 1,
          text: 'Analyze data',
          priority: 0,
          lease_expires_at: lease,
          created_at: expect.any(String),
        })

      const got = await host().json('GET', `/api/v1/commands/${commandId}`, undefined, bearer(await loginAs(host(), 'viewer')))
      expect(got.status).toBe(200)
      expect(got.body).toMatchObject({
        command_id: commandId,
        text: 'Analyze data',
        agent_id: id,
        status: 'completed',
        result: 'Analysis done',
        data: { rows: 3 },
        created_at: expect.any(String),
        updated_at: expect.any(String),
      })
      expect(got.body).not.toHaveProperty('lease_token')

      const again = await host().json('POST', `/api/v1/commands/${commandId}/complete`, { result: 'twice' }, bearer(agentToken))
      expect(again.status).toBe(409)
      expect(again.body.error.code).toBe('ALREADY_FINISHED')
    } finally {
      await ws.close()
      await redis?.close()
    }
  })

  it('streams the same events over SSE, with ids, and resumes from Last-Event-ID', async () => {
    const operator = await loginAs(host(), 'operator')
    const agentToken = await loginAs(host(), 'agent')
    const id = `sse-${uid()}`
    await host().json('POST', '/api/v1/agents/register', { agent_id: id }, bearer(agentToken))
    const sse = await openEventsSse(host().url, operator)
    expect(sse.response.status).toBe(200)
    expect(sse.response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const c1 = await host().json('POST', '/api/v1/commands', { text: 'one', agent_id: id }, bearer(operator))
    const [first] = await sse.waitFor(1)
    expect(first).toMatchObject({ type: 'command_created', command_id: c1.body.command_id })
    expect(sse.ids[0]).toBe(String(first!.id))
    await sse.close()
    await host().json('POST', '/api/v1/commands', { text: 'two', agent_id: id }, bearer(operator))
    await host().json('POST', '/api/v1/commands', { text: 'three', agent_id: id }, bearer(operator))
    const resumed = await openEventsSse(host().url, operator, { lastEventId: String(first!.id), viaQueryToken: true })
    const got = await resumed.waitFor(2)
    expect(got.map((e) => e.text)).toEqual(['two', 'three'])
    await resumed.close()
  })

  it('lets an agent user act only for the agents it registered', async () => {
    const owner = await createUser(host(), ['agent'])
    const other = await createUser(host(), ['agent'])
    const ownerToken = await login(host(), owner.username, owner.password)
    const otherToken = await login(host(), other.username, other.password)
    const operator = await loginAs(host(), 'operator')
    const id = `own-${uid()}`
    await host().json('POST', '/api/v1/agents/register', { agent_id: id }, bearer(ownerToken))
    const steal = await host().json('POST', '/api/v1/agents/register', { agent_id: id, name: 'mine now' }, bearer(otherToken))
    expect(steal.status).toBe(403)
    const cmd = await host().json('POST', '/api/v1/commands', { text: 'private', agent_id: id }, bearer(operator))
    expect((await host().json('POST', `/api/v1/agents/${id}/commands/claim`, undefined, bearer(otherToken))).status).toBe(403)
    expect((await host().json('POST', `/api/v1/commands/${cmd.body.command_id}/complete`, { result: 'x' }, bearer(otherToken))).status).toBe(403)
    expect((await host().json('POST', `/api/v1/commands/${cmd.body.command_id}/fail`, { error: 'x' }, bearer(otherToken))).status).toBe(403)
    const claimed = await host().json('POST', `/api/v1/agents/${id}/commands/claim`, undefined, bearer(ownerToken))
    expect(claimed.body.command_id).toBe(cmd.body.command_id)
  })
})
