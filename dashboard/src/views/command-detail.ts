/** One command: its text, result and data, its events from the log and live, and how long each step took. */
import { messageOf, type Ctx, type View } from '../context.ts'
import { h, replace } from '../dom.ts'
import { absolute, between, clock, duration, pretty } from '../format.ts'
import { findEventIdAt, type LiveEvent } from '../live.ts'
import { can } from '../session.ts'
import type { Command } from '../types.ts'
import { announce, badge, notice, when } from '../ui.ts'

const COMMAND_TYPES = ['command_created', 'command_dispatched', 'command_completed', 'command_failed', 'command_requeued']
const SCAN_PAGES = 5
const SCAN_PAGE = 1000

const eventLabel: Record<string, string> = {
  command_created: 'created',
  command_dispatched: 'dispatched',
  command_completed: 'completed',
  command_failed: 'failed',
  command_requeued: 'requeued',
}

const term = (label: string, ...value: Array<Node | string>) => [h('dt', null, label), h('dd', null, ...value)]

export const commandDetailView = (ctx: Ctx, id: string): View => {
  let command: Command | undefined
  const logged = new Map<number, LiveEvent>()
  let historyState: 'loading' | 'done' | 'failed' = 'loading'
  const content = h('div', { class: 'detail', 'aria-busy': 'true' })
  const top = h('div', { class: 'detail-status' })
  const heading = h('h1', { tabindex: '-1' }, 'Command')
  const actionStatus = h('div')

  const events = (): LiveEvent[] => {
    const all = new Map(logged)
    for (const e of ctx.store.commandEvents.get(id) ?? []) all.set(e.id, e)
    return [...all.values()].sort((a, b) => a.id - b.id)
  }

  const timings = (c: Command) => {
    const dispatched = c.dispatched_at ?? null
    const queued = between(c.created_at, dispatched ?? c.finished_at ?? null)
    const running = between(dispatched, c.finished_at ?? null)
    const total = between(c.created_at, c.finished_at ?? null)
    const scale = Math.max(total ?? 0, (queued ?? 0) + (running ?? 0), 1)
    const bar = (label: string, ms: number | null, kind: string) => {
      const fill = h('span', { class: `bar-fill ${kind}` })
      fill.style.width = `${ms === null ? 0 : Math.max(2, (ms / scale) * 100)}%`
      return h('div', { class: 'timing' }, h('span', { class: 'timing-label' }, label), h('span', { class: 'bar' }, fill), h('span', { class: 'timing-value' }, duration(ms)))
    }
    return h(
      'div',
      { class: 'timings' },
      bar('In queue', queued, 'queued'),
      bar(dispatched ? 'Running' : 'Running (not claimed)', running, 'running'),
      bar('Total', total, 'total'),
    )
  }

  const eventList = (c: Command) => {
    const list = events()
    if (!list.length)
      return h('p', { class: 'empty' }, historyState === 'loading' ? 'Reading the event log…' : historyState === 'failed' ? 'The event log could not be read.' : 'No events.')
    const start = Date.parse(c.created_at ?? list[0]!.created_at ?? '')
    return h(
      'ol',
      { class: 'timeline' },
      list.map((e) => {
        const extra: string[] = []
        if (typeof e.actor === 'string') extra.push(`by ${e.actor}`)
        if (typeof e.reason === 'string') extra.push(e.reason)
        if (typeof e.error === 'string') extra.push(e.error)
        const t = Date.parse(e.created_at ?? '')
        return h(
          'li',
          { class: `tl-${eventLabel[e.type] ?? 'other'}` },
          h('span', { class: 'tl-dot', 'aria-hidden': 'true' }),
          h('div', { class: 'tl-main' }, h('strong', null, eventLabel[e.type] ?? e.type), extra.length ? h('span', { class: 'muted' }, ` · ${extra.join(' · ')}`) : null),
          h('div', { class: 'tl-time muted small' }, h('time', { datetime: e.created_at ?? '', title: absolute(e.created_at) }, clock(e.created_at)), Number.isNaN(t - start) ? '' : ` (+${duration(t - start)})`, ` · #${e.id}`),
        )
      }),
    )
  }

  // The command keeps its creator's user id; the API has no way to name another user.
  const creator = (c: Command): string =>
    !c.created_by ? '—' : c.created_by === ctx.user.sub ? `${ctx.user.username} (you)` : `user ${c.created_by}`

  const retry = async () => {
    try {
      await ctx.api.post(`/api/v1/commands/${encodeURIComponent(id)}/retry`)
      replace(actionStatus, notice('ok', 'Queued again.'))
      announce('Command queued again')
      await load()
    } catch (err) {
      replace(actionStatus, notice('error', `Could not retry: ${messageOf(err)}`))
    }
  }

  const render = () => {
    const c = command
    if (!c) return
    replace(top, badge(c.status), h('span', { class: 'mono muted small' }, c.command_id))
    const result =
      c.status === 'failed'
        ? h('pre', { class: 'block error-text' }, c.error ?? 'Failed without a message.')
        : c.result !== undefined && c.result !== null
          ? h('pre', { class: 'block' }, c.result)
          : h('p', { class: 'empty' }, c.status === 'completed' ? 'Completed without a result.' : 'No result yet.')
    replace(
      content,
      h(
        'div',
        { class: 'detail-main' },
        h('section', { class: 'panel', 'aria-label': 'Text' }, h('h2', null, 'Text'), h('pre', { class: 'block', id: 'command-text' }, c.text)),
        h('section', { class: 'panel', 'aria-label': 'Result' }, h('h2', null, c.status === 'failed' ? 'Error' : 'Result'), h('div', { id: 'command-result' }, result)),
        h(
          'section',
          { class: 'panel', 'aria-label': 'Data' },
          h('h2', null, 'Data'),
          c.data === null || c.data === undefined ? h('p', { class: 'empty' }, 'No data.') : h('pre', { class: 'block', id: 'command-data' }, pretty(c.data)),
        ),
      ),
      h(
        'div',
        { class: 'detail-side' },
        h(
          'section',
          { class: 'panel', 'aria-label': 'Details' },
          h('h2', null, 'Details'),
          h(
            'dl',
            { class: 'facts' },
            term('Agent', c.agent_id ? h('a', { href: `#/commands?agent=${encodeURIComponent(c.agent_id)}`, class: 'mono' }, c.agent_id) : 'none'),
            term('Routed', c.routed_by_rule ? `by rule #${c.routed_by_rule}` : 'addressed directly'),
            term('Created by', creator(c)),
            term('Attempts', `${c.attempts ?? 0} of ${c.max_attempts ?? '—'}`),
            term('Created', when(c.created_at)),
            term('Dispatched', c.dispatched_at ? when(c.dispatched_at) : '—'),
            term('Finished', c.finished_at ? when(c.finished_at) : '—'),
          ),
          c.status === 'failed' && can(ctx.user, 'operator') ? h('div', { class: 'form-actions' }, h('button', { type: 'button', class: 'btn', onclick: () => void retry() }, 'Retry')) : null,
          actionStatus,
        ),
        h('section', { class: 'panel', 'aria-label': 'Timings' }, h('h2', null, 'Timings'), timings(c)),
        h('section', { class: 'panel', 'aria-label': 'Events' }, h('h2', null, 'Events'), h('div', { id: 'command-events' }, eventList(c))),
      ),
    )
    content.setAttribute('aria-busy', 'false')
  }

  const load = async () => {
    try {
      const since = ctx.store.now()
      const fetched = await ctx.api.get<Command>(`/api/v1/commands/${encodeURIComponent(id)}`)
      ctx.store.upsertCommands([fetched], since)
      command = { ...fetched, ...ctx.store.commands.get(id), result: fetched.result, data: fetched.data }
      render()
    } catch (err) {
      replace(content, notice('error', `Could not load this command: ${messageOf(err)}`))
      content.setAttribute('aria-busy', 'false')
    }
  }

  // The log has no filter by command: find where this command's time starts by bisection, then scan a
  // bounded number of pages of command events from there.
  const readHistory = async () => {
    const c = command
    if (!c?.created_at) return
    try {
      const firstAfter = async (after: number) => (await ctx.readEvents(after, undefined, 1))[0]
      const newest = await ctx.newestEventId()
      let after = await findEventIdAt(firstAfter, newest, Date.parse(c.created_at) - 2000)
      const until = c.finished_at ? Date.parse(c.finished_at) + 5000 : Infinity
      for (let page = 0; page < SCAN_PAGES; page++) {
        const batch = await ctx.readEvents(after, COMMAND_TYPES, SCAN_PAGE)
        for (const e of batch) if (e.command_id === id) logged.set(e.id, e)
        const last = batch.at(-1)
        if (!last || batch.length < SCAN_PAGE || Date.parse(last.created_at ?? '') > until) break
        after = last.id
      }
      historyState = 'done'
    } catch {
      historyState = 'failed'
    }
    render()
  }

  let pending: ReturnType<typeof setTimeout> | undefined
  const off = ctx.store.on('commands', (changed) => {
    if (changed !== id) return
    // A status change: the event has the status, the command has the result; read it once things settle.
    clearTimeout(pending)
    pending = setTimeout(() => void load(), 100)
    const c = ctx.store.commands.get(id)
    if (command && c) {
      command = { ...command, status: c.status, dispatched_at: c.dispatched_at ?? command.dispatched_at, finished_at: c.finished_at ?? command.finished_at }
      render()
    }
  })

  const el = h(
    'div',
    { class: 'view' },
    h('p', { class: 'back' }, h('a', { href: '#/commands' }, '← All commands')),
    h('header', { class: 'view-head' }, heading, top),
    content,
  )
  replace(content, h('p', { class: 'empty' }, 'Loading…'))
  void load().then(readHistory)
  return {
    el,
    title: 'Command',
    unmount() {
      off()
      clearTimeout(pending)
    },
  }
}
