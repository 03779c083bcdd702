/** What the dashboard knows (agents, commands, the event feed, the live connection), kept current from events. */
import type { LiveEvent, LiveStatus } from './live.ts'
import type { Agent, Command, CommandStatus } from './types.ts'

export type Topic = 'agents' | 'commands' | 'feed' | 'live'
type Listener = (changed?: string) => void

/** The feed keeps this many events; older ones leave the page (the log keeps them). */
export const FEED_MAX = 500
const PER_COMMAND_MAX = 100
const RECENT_MAX = 1000

const STATUS_BY_TYPE: Record<string, CommandStatus> = {
  command_created: 'queued',
  command_dispatched: 'dispatched',
  command_completed: 'completed',
  command_failed: 'failed',
  command_requeued: 'queued',
}
const STATUSES = new Set<string>(['queued', 'dispatched', 'completed', 'failed'])

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

export class Store {
  readonly agents = new Map<string, Agent>()
  readonly commands = new Map<string, Command>()
  /** Oldest first, ids strictly increasing. */
  readonly feed: LiveEvent[] = []
  /** Events of each command seen live, oldest first. */
  readonly commandEvents = new Map<string, LiveEvent[]>()
  live: LiveStatus = { state: 'idle', attempt: 0, retryAt: undefined, lastId: 0 }
  private readonly listeners = new Map<Topic, Set<Listener>>()
  /** The latest command and agent events, with when they were applied, to re-apply after a fetch. */
  private readonly recent: Array<{ at: number; ev: LiveEvent }> = []
  private tick = 0

  on(topic: Topic, fn: Listener): () => void {
    let set = this.listeners.get(topic)
    if (!set) this.listeners.set(topic, (set = new Set()))
    set.add(fn)
    return () => set.delete(fn)
  }

  emit(topic: Topic, changed?: string) {
    for (const fn of [...(this.listeners.get(topic) ?? [])]) fn(changed)
  }

  /**
   * Replaces the agents with a fetched list. `since` is when the fetch started (from {@link now}): live
   * events that arrived after it are applied again on top, so a slow answer never undoes them.
   */
  setAgents(list: Agent[], since = Infinity) {
    this.agents.clear()
    for (const a of list) this.agents.set(a.agent_id, a)
    for (const r of this.recent) if (r.at >= since && r.ev.type.startsWith('agent_')) this.applyAgent(r.ev)
    this.emit('agents')
  }

  upsertAgent(agent: Agent) {
    this.agents.set(agent.agent_id, { ...this.agents.get(agent.agent_id), ...agent })
    this.emit('agents', agent.agent_id)
  }

  /** Merges fetched commands; as for agents, live events that arrived after `since` win. */
  upsertCommands(list: Command[], since = Infinity) {
    const ids = new Set<string>()
    for (const c of list) {
      this.commands.set(c.command_id, { ...this.commands.get(c.command_id), ...c })
      ids.add(c.command_id)
    }
    for (const r of this.recent) if (r.at >= since && r.ev.command_id && ids.has(r.ev.command_id)) this.applyCommand(r.ev)
    this.emit('commands')
  }

  /** A clock for `since`: the order in which things happened on this page. */
  now() {
    return ++this.tick
  }

  /** Adds history to the feed (ids at or below the newest already shown are skipped). */
  addHistory(events: LiveEvent[]) {
    const newest = this.feed.at(-1)?.id ?? 0
    const fresh = events.filter((e) => e.id > newest)
    if (!fresh.length) return
    this.feed.push(...fresh)
    this.trimFeed()
    this.emit('feed')
  }

  private trimFeed() {
    if (this.feed.length > FEED_MAX) this.feed.splice(0, this.feed.length - FEED_MAX)
  }

  /**
   * Applies one live event to the feed, agents and commands. Returns what it could not apply from the
   * event alone, to be fetched: a command or an agent this page has not seen.
   */
  apply(ev: LiveEvent): { command?: string; agent?: string } {
    const newest = this.feed.at(-1)?.id ?? 0
    if (ev.id > newest) {
      this.feed.push(ev)
      this.trimFeed()
      this.emit('feed', String(ev.id))
    }
    const missing: { command?: string; agent?: string } = {}
    const isCommand = ev.type.startsWith('command_') && ev.command_id
    const isAgent = (ev.type === 'agent_registered' || ev.type === 'agent_status') && ev.agent_id
    if (isCommand || isAgent) {
      this.recent.push({ at: this.now(), ev })
      if (this.recent.length > RECENT_MAX) this.recent.shift()
    }
    if (isCommand) {
      const id = ev.command_id!
      const seen = this.commandEvents.get(id) ?? []
      if (!seen.some((e) => e.id === ev.id)) seen.push(ev)
      if (seen.length > PER_COMMAND_MAX) seen.shift()
      this.commandEvents.set(id, seen)
      if (this.commandEvents.size > 1000) this.commandEvents.delete(this.commandEvents.keys().next().value!)
      if (this.applyCommand(ev)) this.emit('commands', id)
      else missing.command = id
    }
    if (isAgent) {
      if (this.applyAgent(ev)) this.emit('agents', ev.agent_id)
      else missing.agent = ev.agent_id
    }
    return missing
  }

  /** Applies a command event to a command this page knows (or creates it from command_created); false when unknown. */
  private applyCommand(ev: LiveEvent): boolean {
    const id = ev.command_id!
    const status = (STATUSES.has(str(ev.status) ?? '') ? ev.status : STATUS_BY_TYPE[ev.type]) as CommandStatus | undefined
    const existing = this.commands.get(id)
    const at = ev.created_at ?? null
    if (ev.type !== 'command_created' && !existing) return false
    const base: Command = existing ?? {
      command_id: id,
      text: str(ev.text) ?? '',
      agent_id: ev.agent_id ?? null,
      status: 'queued',
      created_at: at,
      updated_at: at,
    }
    // An event older than what the command already shows (a fetch was newer) changes nothing.
    if (existing && at && existing.updated_at && at < existing.updated_at) return true
    const next: Command = { ...base, updated_at: at ?? base.updated_at }
    if (status) next.status = status
    if (typeof ev.attempts === 'number') next.attempts = ev.attempts
    if (ev.agent_id) next.agent_id = ev.agent_id
    if (ev.type === 'command_dispatched') next.dispatched_at = at
    if (ev.type === 'command_completed' || ev.type === 'command_failed') next.finished_at = at
    if (ev.type === 'command_failed' && str(ev.error)) next.error = str(ev.error)!
    if (ev.type === 'command_requeued') next.finished_at = null
    this.commands.set(id, next)
    return true
  }

  /** Applies an agent event; false when the agent is unknown and the event does not carry it. */
  private applyAgent(ev: LiveEvent): boolean {
    const id = ev.agent_id!
    const given = ev.agent as Agent | undefined
    const existing = this.agents.get(id)
    if (given && typeof given === 'object' && given.agent_id === id) {
      this.agents.set(id, { ...existing, ...given })
      return true
    }
    if (!existing) return false
    const next: Agent = { ...existing }
    if (ev.status === 'online' || ev.status === 'offline') next.status = ev.status
    if (next.status === 'online' && ev.created_at) next.last_seen_at = ev.created_at
    this.agents.set(id, next)
    return true
  }
}
