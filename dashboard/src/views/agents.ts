/** Agents: online/offline, capabilities, last seen; live from agent events, refetched now and then for last-seen times. */
import { every, messageOf, type Ctx, type View } from '../context.ts'
import { h, reconcile, replace, setText } from '../dom.ts'
import type { Agent } from '../types.ts'
import { badge, cell, chips, empty, field, notice, table, when } from '../ui.ts'

type Filter = 'all' | 'online' | 'offline'

export const agentsView = (ctx: Ctx): View => {
  let filter: Filter = 'all'
  const body = h('tbody')
  const summary = h('p', { class: 'lede', 'aria-live': 'polite' })
  const status = h('div')
  const emptyBox = h('div')
  const tableBox = table('Agents', ['Agent', 'Status', 'Capabilities', 'Last seen'], body, 'agents')

  const row = (a: Agent) =>
    h(
      'tr',
      { class: `agent-${a.status}` },
      cell('Agent', h('div', { class: 'name' }, a.name || a.agent_id), h('div', { class: 'mono muted small' }, a.agent_id)),
      cell('Status', badge(a.status)),
      cell('Capabilities', chips(a.capabilities ?? [])),
      cell('Last seen', when(a.last_seen_at)),
    )

  const render = () => {
    const all = [...ctx.store.agents.values()]
    const online = all.filter((a) => a.status === 'online').length
    setText(summary, all.length ? `${online} online · ${all.length - online} offline` : 'No agent has registered yet.')
    const shown = all
      .filter((a) => filter === 'all' || a.status === filter)
      .sort((a, b) => (a.status === b.status ? (a.name || a.agent_id).localeCompare(b.name || b.agent_id) : a.status === 'online' ? -1 : 1))
    reconcile(body, shown, (a) => a.agent_id, (a) => JSON.stringify([a.name, a.status, a.capabilities, a.last_seen_at]), row)
    tableBox.hidden = shown.length === 0
    replace(emptyBox, shown.length ? null : empty(all.length ? `No ${filter} agents.` : 'No agent has registered yet. Agents appear here as they register.'))
  }

  const load = async () => {
    try {
      const since = ctx.store.now()
      const { agents } = await ctx.api.get<{ agents: Agent[] }>('/api/v1/agents')
      ctx.store.setAgents(agents, since)
      replace(status)
    } catch (err) {
      replace(status, notice('error', `Could not load the agents: ${messageOf(err)}`))
    }
  }

  const select = h(
    'select',
    {
      onchange: (e) => {
        filter = (e.target as HTMLSelectElement).value as Filter
        render()
      },
    },
    h('option', { value: 'all' }, 'All'),
    h('option', { value: 'online' }, 'Online'),
    h('option', { value: 'offline' }, 'Offline'),
  )
  const el = h(
    'div',
    { class: 'view' },
    h('header', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Agents'), summary),
    h(
      'div',
      { class: 'toolbar' },
      field('Show', select),
      h('button', { type: 'button', class: 'btn', onclick: () => void load() }, 'Refresh'),
    ),
    status,
    h('section', { class: 'panel flush', 'aria-label': 'Agents' }, tableBox, emptyBox),
  )
  const off = ctx.store.on('agents', render)
  // Heartbeats move last_seen_at without an event; a light refetch keeps it honest.
  const stop = every(15_000, () => void load())
  render()
  void load()
  return {
    el,
    title: 'Agents',
    unmount() {
      off()
      stop()
    },
  }
}
