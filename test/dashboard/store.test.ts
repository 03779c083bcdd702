/** The dashboard's store without a browser: events applied to agents and commands, and fetched lists that never undo a newer event. */
import { describe, expect, it } from 'vitest'
import type { LiveEvent } from '../../dashboard/src/live.ts'
import { FEED_MAX, Store } from '../../dashboard/src/store.ts'
import type { Agent, Command } from '../../dashboard/src/types.ts'

const agent = (id: string, status: Agent['status'] = 'online'): Agent => ({ agent_id: id, name: id, status, capabilities: [], last_seen_at: '2026-01-01T00:00:00.000Z' })
const command = (id: string, status: Command['status'], updated: string): Command => ({
  command_id: id,
  text: `do ${id}`,
  agent_id: 'a1',
  status,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: updated,
})
let seq = 0
const ev = (type: string, fields: Partial<LiveEvent> = {}): LiveEvent => ({ id: ++seq, type, created_at: `2026-01-01T00:00:0${Math.min(9, seq % 10)}.000Z`, ...fields })

describe('dashboard store', () => {
  it('creates a command from command_created and moves its status with the later events', () => {
    const s = new Store()
    const changed: Array<string | undefined> = []
    s.on('commands', (id) => changed.push(id))
    expect(s.apply(ev('command_created', { command_id: 'c1', agent_id: 'a1', text: 'hello', status: 'queued', created_at: '2026-01-01T00:00:01.000Z' }))).toEqual({})
    s.apply(ev('command_dispatched', { command_id: 'c1', status: 'dispatched', created_at: '2026-01-01T00:00:02.000Z' }))
    s.apply(ev('command_completed', { command_id: 'c1', status: 'completed', created_at: '2026-01-01T00:00:03.000Z' }))
    expect(s.commands.get('c1')).toMatchObject({ text: 'hello', status: 'completed', dispatched_at: '2026-01-01T00:00:02.000Z', finished_at: '2026-01-01T00:00:03.000Z' })
    expect(changed).toEqual(['c1', 'c1', 'c1'])
    expect(s.commandEvents.get('c1')?.map((e) => e.type)).toEqual(['command_created', 'command_dispatched', 'command_completed'])
  })

  it('asks for what an event alone cannot show: an unknown command or agent', () => {
    const s = new Store()
    expect(s.apply(ev('command_completed', { command_id: 'c9', status: 'completed' }))).toEqual({ command: 'c9' })
    expect(s.apply(ev('agent_status', { agent_id: 'a9', status: 'offline' }))).toEqual({ agent: 'a9' })
    // agent_registered carries the agent: nothing to fetch.
    expect(s.apply(ev('agent_registered', { agent_id: 'a8', agent: agent('a8') }))).toEqual({})
    expect(s.agents.get('a8')?.status).toBe('online')
  })

  it('keeps a live status when a list fetched before it arrives after it', () => {
    const s = new Store()
    s.setAgents([agent('a1')])
    const since = s.now() // a fetch starts...
    s.apply(ev('agent_status', { agent_id: 'a1', status: 'offline' })) // ...an event arrives...
    s.setAgents([agent('a1', 'online')], since) // ...then the (older) answer
    expect(s.agents.get('a1')?.status).toBe('offline')
    // A fetch started after the event is the newer truth.
    s.setAgents([agent('a1', 'online')], s.now())
    expect(s.agents.get('a1')?.status).toBe('online')

    s.upsertCommands([command('c1', 'queued', '2026-01-01T00:00:01.000Z')])
    const before = s.now()
    s.apply(ev('command_completed', { command_id: 'c1', status: 'completed', created_at: '2026-01-01T00:00:05.000Z' }))
    s.upsertCommands([command('c1', 'dispatched', '2026-01-01T00:00:03.000Z')], before)
    expect(s.commands.get('c1')?.status).toBe('completed')
    // An event older than what a fetch showed changes nothing.
    s.upsertCommands([command('c2', 'completed', '2026-01-01T00:00:09.000Z')])
    s.apply(ev('command_dispatched', { command_id: 'c2', status: 'dispatched', created_at: '2026-01-01T00:00:04.000Z' }))
    expect(s.commands.get('c2')?.status).toBe('completed')
  })

  it('keeps the feed in id order, each event once, and at most FEED_MAX', () => {
    const s = new Store()
    s.addHistory([ev('x'), ev('x')])
    const last = s.feed.at(-1)!
    s.apply(last) // a replay
    s.addHistory([last])
    expect(s.feed).toHaveLength(2)
    for (let i = 0; i < FEED_MAX + 20; i++) s.apply(ev('x'))
    expect(s.feed).toHaveLength(FEED_MAX)
    const ids = s.feed.map((e) => e.id)
    expect([...ids].sort((a, b) => a - b)).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })
})
