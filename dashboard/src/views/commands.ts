/** Commands: issue one (to an agent or routed), and the recent ones with their status moving live; filter by status and agent. */
import { ApiFailure } from '../api.ts'
import { messageOf, type Ctx, type View } from '../context.ts'
import { h, reconcile, replace } from '../dom.ts'
import { between, duration, excerpt } from '../format.ts'
import { can } from '../session.ts'
import type { Agent, Command, CommandPage } from '../types.ts'
import { announce, badge, cell, empty, field, notice, panel, table, when } from '../ui.ts'

const STATUSES = ['queued', 'dispatched', 'completed', 'failed'] as const
const PAGE = 50

export const commandHref = (id: string) => `#/commands/${encodeURIComponent(id)}`

const agentLabel = (a: Agent) => `${a.name && a.name !== a.agent_id ? `${a.name} (${a.agent_id})` : a.agent_id}${a.status === 'offline' ? ' — offline' : ''}`

/** Fills a <select> with the agents, keeping the current choice. */
const fillAgents = (select: HTMLSelectElement, agents: Agent[], first: HTMLOptionElement) => {
  const value = select.value
  const sorted = [...agents].sort((a, b) =>
    a.status === b.status ? a.agent_id.localeCompare(b.agent_id) : a.status === 'online' ? -1 : 1,
  )
  select.replaceChildren(first, ...sorted.map((a) => h('option', { value: a.agent_id }, agentLabel(a))))
  if ([...select.options].some((o) => o.value === value)) select.value = value
}

export const commandsView = (ctx: Ctx, query: URLSearchParams): View => {
  const filter = { status: query.get('status') ?? '', agent: query.get('agent') ?? '' }
  const ids = new Set<string>()
  let cursor: string | null = null
  let loading = false

  const matches = (c: Command) => (!filter.status || c.status === filter.status) && (!filter.agent || c.agent_id === filter.agent)

  // ---- the form ----
  const text = h('textarea', { name: 'text', rows: 3, maxlength: 10000, required: true, placeholder: 'What should the agent do?' })
  const target = h('select', { name: 'agent_id' })
  const routed = h('option', { value: '' }, 'Routed by the rules')
  const send = h('button', { type: 'submit', class: 'btn primary' }, 'Send command')
  const formStatus = h('div', { class: 'form-status' })
  const form = h(
    'form',
    { class: 'command-form', novalidate: true },
    h('div', { class: 'form-grid' }, field('Command', text), field('Send to', target, 'An agent, or the routing rules pick one')),
    h('div', { class: 'form-actions' }, send),
    formStatus,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const value = text.value
    if (!value.trim()) {
      replace(formStatus, notice('error', 'Type the command first.'))
      text.focus()
      return
    }
    send.disabled = true
    try {
      const body: { text: string; agent_id?: string } = { text: value }
      if (target.value) body.agent_id = target.value
      const created = await ctx.api.post<Command>('/api/v1/commands', body)
      ctx.store.upsertCommands([created])
      if (matches(created)) ids.add(created.command_id)
      render()
      text.value = ''
      replace(formStatus, notice('ok', 'Queued: ', h('a', { href: commandHref(created.command_id) }, excerpt(created.text, 60))))
      announce('Command queued')
      text.focus()
    } catch (err) {
      const message = err instanceof ApiFailure && err.code === 'NO_ROUTE' ? 'No routing rule matches this command: pick an agent.' : messageOf(err)
      replace(formStatus, notice('error', `Not sent: ${message}`))
    } finally {
      send.disabled = false
    }
  })
  text.addEventListener('keydown', (e) => {
    // Ctrl/Cmd+Enter sends, as in most chat and ticket tools; Enter alone is a new line.
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit()
  })

  // ---- filters and list ----
  const statusSelect = h('select', { name: 'status' }, h('option', { value: '' }, 'All'), STATUSES.map((s) => h('option', { value: s }, s)))
  statusSelect.value = filter.status
  const agentSelect = h('select', { name: 'agent' })
  const anyAgent = h('option', { value: '' }, 'All agents')
  const body = h('tbody')
  const listStatus = h('div')
  const emptyBox = h('div')
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more')
  const tableBox = table('Recent commands', ['Status', 'Command', 'Agent', 'Created', 'Took'], body, 'commands')

  const row = (c: Command) => {
    const took = c.finished_at ? duration(between(c.created_at, c.finished_at)) : c.status === 'dispatched' ? 'running' : '—'
    return h(
      'tr',
      { class: `status-${c.status}` },
      cell('Status', badge(c.status)),
      cell('Command', h('a', { href: commandHref(c.command_id), class: 'cmd-link', 'data-focus': 'link' }, excerpt(c.text || '(no text)', 120))),
      cell('Agent', c.agent_id ? h('span', { class: 'mono' }, c.agent_id) : h('span', { class: 'muted' }, 'none')),
      cell('Created', when(c.created_at)),
      cell('Took', took),
    )
  }

  const render = () => {
    const shown = [...ids]
      .map((id) => ctx.store.commands.get(id))
      .filter((c): c is Command => c !== undefined && matches(c))
      .sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? '') || b.command_id.localeCompare(a.command_id))
    reconcile(body, shown, (c) => c.command_id, (c) => JSON.stringify([c.status, c.text, c.agent_id, c.created_at, c.finished_at]), row)
    tableBox.hidden = shown.length === 0
    replace(emptyBox, shown.length || loading ? null : empty(filter.status || filter.agent ? 'No command matches these filters.' : 'No commands yet.'))
    more.hidden = cursor === null
  }

  const load = async (append: boolean) => {
    loading = true
    const qs = new URLSearchParams({ limit: String(PAGE) })
    if (filter.status) qs.set('status', filter.status)
    if (filter.agent) qs.set('agent_id', filter.agent)
    if (append && cursor) qs.set('cursor', cursor)
    try {
      const since = ctx.store.now()
      const page = await ctx.api.get<CommandPage>(`/api/v1/commands?${qs}`)
      if (!append) ids.clear()
      for (const c of page.commands) ids.add(c.command_id)
      cursor = page.next_cursor
      ctx.store.upsertCommands(page.commands, since)
      replace(listStatus)
    } catch (err) {
      replace(listStatus, notice('error', `Could not load the commands: ${messageOf(err)}`))
    } finally {
      loading = false
      render()
    }
  }

  const applyFilters = () => {
    filter.status = statusSelect.value
    filter.agent = agentSelect.value
    const qs = new URLSearchParams()
    if (filter.status) qs.set('status', filter.status)
    if (filter.agent) qs.set('agent', filter.agent)
    const q = qs.toString()
    history.replaceState(null, '', `#/commands${q ? `?${q}` : ''}`)
    cursor = null
    void load(false)
  }
  statusSelect.addEventListener('change', applyFilters)
  agentSelect.addEventListener('change', applyFilters)
  more.addEventListener('click', () => void load(true))

  const syncAgents = () => {
    const agents = [...ctx.store.agents.values()]
    fillAgents(target, agents, routed)
    fillAgents(agentSelect, agents, anyAgent)
    if (filter.agent && !agentSelect.value) {
      // An agent named in the address but not (yet) listed: keep it selectable.
      agentSelect.append(h('option', { value: filter.agent }, filter.agent))
      agentSelect.value = filter.agent
    }
  }

  const operator = can(ctx.user, 'operator')
  const el = h(
    'div',
    { class: 'view' },
    h('header', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Commands'), h('p', { class: 'lede' }, 'Statuses change here as agents work: queued → dispatched → completed or failed.')),
    operator
      ? panel('New command', form)
      : panel('New command', notice('info', 'Your role can read commands; issuing them needs the operator role.')),
    h(
      'section',
      { class: 'panel flush', 'aria-labelledby': 'recent-commands' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'recent-commands' }, 'Recent commands'), h('div', { class: 'toolbar inline' }, field('Status', statusSelect), field('Agent', agentSelect))),
      listStatus,
      tableBox,
      emptyBox,
      h('div', { class: 'more' }, more),
    ),
  )

  const offCommands = ctx.store.on('commands', (changed) => {
    if (changed && !ids.has(changed)) {
      const c = ctx.store.commands.get(changed)
      if (c && matches(c)) ids.add(changed)
    }
    render()
  })
  const offAgents = ctx.store.on('agents', syncAgents)
  syncAgents()
  render()
  void load(false)
  return {
    el,
    title: 'Commands',
    unmount() {
      offCommands()
      offAgents()
    },
  }
}
