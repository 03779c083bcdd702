/** Cortex API, per route: bad input in the envelope, byte-for-byte storage, routing, state, events, resume, roles, metrics. */
import { expect, it } from 'vitest'
import { bearer, describeRuntimes, expectEnvelope, loginAs, type TestHost } from '../support/harness.ts'
import { openEventsWs } from '../support/live.ts'

const uid = () => Math.random().toString(36).slice(2, 8)

const agentFor = async (host: TestHost, capabilities: string[] = []) => {
  const agent = await loginAs(host, 'agent')
  const id = `api-${uid()}`
  const res = await host.json('POST', '/api/v1/agents/register', { agent_id: id, capabilities }, bearer(agent))
  expect(res.status).toBe(201)
  return { agent, id }
}

describeRuntimes(
  'cortex: API',
  (host) => {
    it('answers bad command input in the envelope, never 500', async () => {
      const op = bearer(await loginAs(host(), 'operator'))
      const { id } = await agentFor(host())
      const cases: Array<[unknown, number, string, string | null]> = [
        [{}, 400, 'VALIDATION_FAILED', 'text'],
        [{ text: '' }, 400, 'VALIDATION_FAILED', 'text'],
        [{ text: 'x'.repeat(10_001), agent_id: id }, 400, 'VALIDATION_FAILED', 'text'],
        [{ text: 42, agent_id: id }, 400, 'VALIDATION_FAILED', 'text'],
        [{ text: 'hi', agent_id: 'no-such-agent' }, 400, 'AGENT_NOT_FOUND', 'agent_id'],
        [{ text: 'hi', agent_id: '../etc/passwd' }, 400, 'VALIDATION_FAILED', 'agent_id'],
        [{ text: 'nul \u0000 inside', agent_id: id }, 400, 'VALIDATION_FAILED', 'text'],
        [{ text: 'lone \ud800 half', agent_id: id }, 400, 'VALIDATION_FAILED', 'text'],
        [{ text: 'hi', agent_id: id, priority: 'high' }, 400, 'VALIDATION_FAILED', 'priority'],
      ]
      for (const [body, status, code, param] of cases) {
        const res = await host().json('POST', '/api/v1/commands', body, op)
        expectEnvelope(res, status, code)
        expect(res.body.error.param, JSON.stringify(body).slice(0, 80)).toBe(param)
      }
      expectEnvelope(await host().json('POST', '/api/v1/commands', '{"text": "unterminated', op), 400, 'INVALID_JSON')
      expectEnvelope(await host().json('POST', '/api/v1/commands', 'text=hi', { ...op, 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
      expectEnvelope(await host().json('POST', '/api/v1/commands', { text: 'x'.repeat(2_000_000) }, op), 413, 'BODY_TOO_LARGE')
      expectEnvelope(await host().json('GET', '/api/v1/commands/not-a-uuid', undefined, op), 400, 'VALIDATION_FAILED')
      expectEnvelope(await host().json('GET', `/api/v1/commands/${crypto.randomUUID()}`, undefined, op), 404, 'COMMAND_NOT_FOUND')
      expectEnvelope(await host().json('GET', '/api/v1/commands?limit=0', undefined, op), 400, 'VALIDATION_FAILED')
      expectEnvelope(await host().json('GET', '/api/v1/commands?cursor=%27%20or%201%3D1--', undefined, op), 400, 'VALIDATION_FAILED')
      expectEnvelope(await host().json('GET', '/api/v1/commands?status=lost', undefined, op), 400, 'VALIDATION_FAILED')
    })

    it('stores SQL, HTML and Unicode in command text and results byte for byte', async () => {
      const op = bearer(await loginAs(host(), 'operator'))
      const { agent, id } = await agentFor(host())
      const texts = [
        "'); DROP TABLE commands; --",
        '<img src=x onerror=alert(1)><script>alert("x")</script>',
        'emoji 🧪 — “quotes” — 日本語 — \t tab \r\n crlf — \\ backslash — $1 ${x}',
        ' leading and trailing spaces ',
      ]
      for (const text of texts) {
        const created = await host().json('POST', '/api/v1/commands', { text, agent_id: id }, op)
        expect(created.status).toBe(201)
        expect(created.body.text).toBe(text)
        const got = await host().json('GET', `/api/v1/commands/${created.body.command_id}`, undefined, op)
        expect(got.body.text).toBe(text)
        await host().json('POST', `/api/v1/agents/${id}/commands/claim`, undefined, bearer(agent))
        const done = await host().json('POST', `/api/v1/commands/${created.body.command_id}/complete`, { result: text, data: { echo: text } }, bearer(agent))
        expect(done.body.result).toBe(text)
        expect(done.body.data).toEqual({ echo: text })
      }
      const rows = await host().json('GET', '/api/v1/agents', undefined, op)
      expect(rows.status).toBe(200) // the table is still there
    })

    it('lists commands newest first with filters and a cursor', async () => {
      const op = bearer(await loginAs(host(), 'operator'))
      const { id } = await agentFor(host())
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push((await host().json('POST', '/api/v1/commands', { text: `page ${i}`, agent_id: id }, op)).body.command_id)
      const first = await host().json('GET', `/api/v1/commands?agent_id=${id}&limit=2`, undefined, op)
      expect(first.body.commands.map((c: { command_id: string }) => c.command_id)).toEqual([ids[4], ids[3]])
      const second = await host().json('GET', `/api/v1/commands?agent_id=${id}&limit=2&cursor=${first.body.next_cursor}`, undefined, op)
      expect(second.body.commands.map((c: { command_id: string }) => c.command_id)).toEqual([ids[2], ids[1]])
      const third = await host().json('GET', `/api/v1/commands?agent_id=${id}&limit=2&cursor=${second.body.next_cursor}`, undefined, op)
      expect(third.body.commands.map((c: { command_id: string }) => c.command_id)).toEqual([ids[0]])
      expect(third.body.next_cursor).toBeNull()
      const queued = await host().json('GET', `/api/v1/commands?agent_id=${id}&status=completed`, undefined, op)
      expect(queued.body.commands).toEqual([])
    })

    it('routes a command without agent_id by pattern and capability, in priority order; 409 with no route', async () => {
      const admin = bearer(await loginAs(host(), 'admin'))
      const op = bearer(await loginAs(host(), 'operator'))
      const cap = `cap${uid()}`
      const reports = await agentFor(host(), [cap])
      const special = await agentFor(host())
      const word = `zebra${uid()}`
      const r1 = await host().json('POST', '/api/v1/routing-rules', { name: 'special words', pattern: `\\m${word}\\M`, agent_id: special.id, priority: 1 }, admin)
      expect(r1.status).toBe(201)
      const r2 = await host().json('POST', '/api/v1/routing-rules', { name: 'by capability', capability: cap, priority: 50 }, admin)
      expect(r2.status).toBe(201)
      const toSpecial = await host().json('POST', '/api/v1/commands', { text: `please ${word.toUpperCase()} now` }, op)
      expect(toSpecial.body).toMatchObject({ agent_id: special.id, routed_by_rule: r1.body.id })
      const toCap = await host().json('POST', '/api/v1/commands', { text: 'anything else' }, op)
      expect(toCap.body).toMatchObject({ agent_id: reports.id, routed_by_rule: r2.body.id })
      await host().json('DELETE', `/api/v1/routing-rules/${r2.body.id}`, undefined, admin)
      await host().json('DELETE', `/api/v1/routing-rules/${r1.body.id}`, undefined, admin)
      const rules = await host().json('GET', '/api/v1/routing-rules', undefined, admin)
      for (const r of rules.body.rules) await host().json('DELETE', `/api/v1/routing-rules/${r.id}`, undefined, admin)
      expectEnvelope(await host().json('POST', '/api/v1/commands', { text: 'nobody takes this' }, op), 409, 'NO_ROUTE')
      // Rules are admin-only; a bad regular expression is refused when the rule is made.
      expectEnvelope(await host().json('POST', '/api/v1/routing-rules', { name: 'x', capability: 'y' }, op), 403, 'FORBIDDEN')
      const bad = await host().json('POST', '/api/v1/routing-rules', { name: 'x', pattern: '(unclosed', capability: 'y' }, admin)
      expectEnvelope(bad, 400, 'VALIDATION_FAILED')
      expect(bad.body.error.param).toBe('pattern')
      expectEnvelope(await host().json('POST', '/api/v1/routing-rules', { name: 'x' }, admin), 400, 'VALIDATION_FAILED')
    })

    it('keeps an agent’s state: owners write, everyone signed in reads', async () => {
      const { agent, id } = await agentFor(host())
      const viewer = bearer(await loginAs(host(), 'viewer'))
      const put = await host().json('PUT', `/api/v1/agents/${id}/state/progress`, { value: { step: 3, of: 7 } }, bearer(agent))
      expect(put.status).toBe(200)
      expect(put.body).toMatchObject({ key: 'progress', value: { step: 3, of: 7 } })
      expect((await host().json('GET', `/api/v1/agents/${id}/state`, undefined, viewer)).body).toEqual({ agent_id: id, state: { progress: { step: 3, of: 7 } } })
      expect((await host().json('GET', `/api/v1/agents/${id}/state/progress`, undefined, viewer)).body.value).toEqual({ step: 3, of: 7 })
      expectEnvelope(await host().json('PUT', `/api/v1/agents/${id}/state/progress`, { value: 1 }, viewer), 403, 'FORBIDDEN')
      expectEnvelope(await host().json('PUT', `/api/v1/agents/${id}/state/x`, {}, bearer(agent)), 400, 'VALIDATION_FAILED')
      expect((await host().json('DELETE', `/api/v1/agents/${id}/state/progress`, undefined, bearer(agent))).status).toBe(204)
      expectEnvelope(await host().json('GET', `/api/v1/agents/${id}/state/progress`, undefined, viewer), 404, 'STATE_NOT_FOUND')
      expectEnvelope(await host().json('GET', '/api/v1/agents/nobody/state', undefined, viewer), 404, 'AGENT_NOT_FOUND')
    })

    it('posts events and reads the log after an id; system types are reserved', async () => {
      const op = bearer(await loginAs(host(), 'operator'))
      const before = (await host().json('GET', '/api/v1/events?limit=1000', undefined, op)).body.last_id as number
      const posted = await host().json('POST', '/api/v1/events', { type: 'deploy.finished', payload: { version: '1.2.3' } }, op)
      expect(posted.status).toBe(201)
      expect(posted.body).toMatchObject({ event_id: expect.any(Number), type: 'deploy.finished', payload: { version: '1.2.3' } })
      const after = await host().json('GET', `/api/v1/events?after=${before}&type=deploy.finished`, undefined, op)
      expect(after.body.events.map((e: { id: number }) => e.id)).toContain(posted.body.event_id)
      expectEnvelope(await host().json('POST', '/api/v1/events', { type: 'command_completed' }, op), 400, 'VALIDATION_FAILED')
      expectEnvelope(await host().json('POST', '/api/v1/events', { type: 'Bad Type!' }, op), 400, 'VALIDATION_FAILED')
      expectEnvelope(await host().json('POST', '/api/v1/events', { type: 'x' }, bearer(await loginAs(host(), 'viewer'))), 403, 'FORBIDDEN')
      expectEnvelope(await host().json('GET', '/api/v1/events?after=-1', undefined, op), 400, 'VALIDATION_FAILED')
    })

    it('gives a WebSocket client that reconnects with ?after= exactly the events it missed, in order', async () => {
      const op = await loginAs(host(), 'operator')
      const first = await openEventsWs(host().url, op, 'type=resume.test')
      await host().json('POST', '/api/v1/events', { type: 'resume.test', payload: { n: 0 } }, bearer(op))
      const [seen] = await first.waitFor(1)
      await first.close()
      for (let n = 1; n <= 5; n++) await host().json('POST', '/api/v1/events', { type: 'resume.test', payload: { n } }, bearer(op))
      const again = await openEventsWs(host().url, op, `type=resume.test&after=${seen!.id}`)
      await host().json('POST', '/api/v1/events', { type: 'resume.test', payload: { n: 6 } }, bearer(op))
      const got = await again.waitFor(6)
      await new Promise((r) => setTimeout(r, 300)) // nothing more arrives
      expect(again.items.map((e) => e.payload.n)).toEqual([1, 2, 3, 4, 5, 6])
      const ids = got.map((e) => e.id)
      expect([...ids].sort((a, b) => a - b)).toEqual(ids)
      await again.close()
    })

    it('refuses live streams without a valid token', async () => {
      await expect(openEventsWs(host().url, 'not-a-token')).rejects.toThrow('401')
      const res = await host().json('GET', '/api/v1/events/stream')
      expectEnvelope(res, 401)
    })

    it('keeps viewers to reading: no commands, no claims, no registrations', async () => {
      const viewer = bearer(await loginAs(host(), 'viewer'))
      const { id } = await agentFor(host())
      expectEnvelope(await host().json('POST', '/api/v1/commands', { text: 'x', agent_id: id }, viewer), 403, 'FORBIDDEN')
      expectEnvelope(await host().json('POST', '/api/v1/agents/register', { agent_id: `v-${uid()}` }, viewer), 403, 'FORBIDDEN')
      expectEnvelope(await host().json('POST', `/api/v1/agents/${id}/commands/claim`, undefined, viewer), 403, 'FORBIDDEN')
      expectEnvelope(await host().json('POST', '/api/v1/commands', { text: 'x', agent_id: id }), 401)
    })

    it('marks a silent agent offline with an agent_status event, and online again on a heartbeat', async () => {
      const op = await loginAs(host(), 'operator')
      const ws = await openEventsWs(host().url, op, 'type=agent_status')
      const { agent, id } = await agentFor(host())
      const mine = async (status: string) => {
        const end = Date.now() + 20_000
        for (;;) {
          const hit = ws.items.find((e) => e.agent_id === id && e.status === status)
          if (hit) return hit
          if (Date.now() > end) throw new Error(`no agent_status ${status} for ${id}: ${JSON.stringify(ws.items)}`)
          await new Promise((r) => setTimeout(r, 50))
        }
      }
      expect(await mine('offline')).toMatchObject({ type: 'agent_status', agent_id: id, status: 'offline' })
      const listed = await host().json('GET', `/api/v1/agents/${id}`, undefined, bearer(op))
      expect(listed.body.status).toBe('offline')
      const beat = await host().json('POST', `/api/v1/agents/${id}/heartbeat`, undefined, bearer(agent))
      expect(beat.body.status).toBe('online')
      const back = await mine('online')
      expect(back.id).toBeGreaterThan((await mine('offline')).id)
      await ws.close()
    })

    it('exposes queue depth and agent counts in /metrics, read afresh at every scrape', async () => {
      await (await host().fetch('/metrics')).text()
      const text = await (await host().fetch('/metrics')).text()
      expect(text).toMatch(/^# TYPE cortex_active_commands gauge$/m)
      expect(text).toMatch(/^cortex_active_commands \d+$/m)
      expect(text).toMatch(/^cortex_agent_count\{status="online"\} \d+$/m)
      expect(text).toMatch(/^cortex_queue_depth\{status="completed"\} [1-9]\d*$/m)
      // A later scrape sees a later command: on workerd the gauges once kept the first scrape's database
      // client (a socket of an ended request) and stayed at its values, or the scrape hung.
      const gauge = (t: string, re: RegExp) => Number(re.exec(t)?.[1] ?? NaN)
      const queued = /^cortex_queue_depth\{status="queued"\} (\d+)$/m
      const active = /^cortex_active_commands (\d+)$/m
      const online = /^cortex_agent_count\{status="online"\} (\d+)$/m
      const { id } = await agentFor(host())
      const op = bearer(await loginAs(host(), 'operator'))
      const before = await (await host().fetch('/metrics')).text()
      expect((await host().json('POST', '/api/v1/commands', { text: 'counted', agent_id: id }, op)).status).toBe(201)
      const after = await (await host().fetch('/metrics')).text()
      expect(gauge(after, queued)).toBe(gauge(before, queued) + 1)
      expect(gauge(after, active)).toBe(gauge(before, active) + 1)
      expect(gauge(after, online)).toBeGreaterThanOrEqual(1)
    })
  },
  { env: { NEXUS_AGENT_TTL: '3' } },
)
