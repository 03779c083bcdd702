/** The live event feed: newest first, each event once, with the connection's state and its resume point. */
import type { Ctx, View } from '../context.ts'
import { h, reconcile, replace, setText } from '../dom.ts'
import { absolute, clock, excerpt, pretty } from '../format.ts'
import type { LiveEvent } from '../live.ts'
import { FEED_MAX } from '../store.ts'
import { badge, empty, field } from '../ui.ts'
import { commandHref } from './commands.ts'

const SHOWN = 200

const KNOWN = new Set(['id', 'type', 'command_id', 'agent_id', 'created_at', 'actor'])

/** One line saying what happened. */
const summary = (e: LiveEvent): string => {
  if (e.type.startsWith('command_')) {
    const text = typeof e.text === 'string' ? excerpt(e.text, 100) : ''
    return typeof e.error === 'string' ? `${text} — ${excerpt(e.error, 60)}` : text
  }
  if (e.type === 'agent_status') return `now ${String(e.status ?? '?')}`
  if (e.type === 'agent_registered') {
    const name = (e.agent as { name?: unknown } | undefined)?.name
    return typeof name === 'string' ? name : ''
  }
  // A posted event: its payload sits under "payload".
  const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !KNOWN.has(k)))
  const shown = Object.keys(rest).length === 1 && 'payload' in rest ? rest.payload : rest
  return shown === null || (typeof shown === 'object' && Object.keys(shown).length === 0) ? '' : excerpt(JSON.stringify(shown), 100)
}

const kind = (type: string) => {
  if (type === 'command_completed') return 'completed'
  if (type === 'command_failed') return 'failed'
  if (type === 'command_dispatched') return 'dispatched'
  if (type.startsWith('command_')) return 'queued'
  if (type.startsWith('agent_')) return 'agent'
  return 'custom'
}

const item = (e: LiveEvent) =>
  h(
    'li',
    { class: 'event', id: `event-${e.id}`, 'data-id': String(e.id), 'data-type': e.type },
    h(
      'div',
      { class: 'event-top' },
      badge(kind(e.type), e.type),
      h('span', { class: 'event-summary' }, summary(e)),
      h('time', { class: 'event-time muted small', datetime: e.created_at ?? '', title: absolute(e.created_at) }, clock(e.created_at)),
    ),
    h(
      'div',
      { class: 'event-meta muted small' },
      h('span', { class: 'mono' }, `#${e.id}`),
      typeof e.actor === 'string' ? h('span', null, `by ${e.actor}`) : null,
      e.command_id ? h('a', { href: commandHref(e.command_id), class: 'mono' }, `command ${e.command_id.slice(0, 8)}`) : null,
      e.agent_id ? h('span', { class: 'mono' }, `agent ${e.agent_id}`) : null,
      h('details', { class: 'event-raw' }, h('summary', null, 'payload'), h('pre', { class: 'block small' }, pretty(e))),
    ),
  )

export const eventsView = (ctx: Ctx): View => {
  let typeFilter = ''
  const list = h('ol', { class: 'feed', 'aria-live': 'polite', 'aria-relevant': 'additions', reversed: true })
  const emptyBox = h('div')
  const state = h('p', { class: 'feed-state', role: 'status' })
  const retry = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => ctx.retryLive() }, 'Reconnect now')
  const typeSelect = h('select', { name: 'type' }, h('option', { value: '' }, 'All types'))
  const seenTypes = new Set<string>()

  const renderState = () => {
    const { state: s, attempt, lastId } = ctx.store.live
    const text =
      s === 'live'
        ? `Live. Resumes after event #${lastId} if the connection drops.`
        : s === 'reconnecting'
          ? `Reconnecting… (attempt ${attempt}). Events meanwhile are kept by the server and will follow, after #${lastId}.`
          : s === 'connecting'
            ? 'Connecting…'
            : 'Not connected.'
    setText(state, text)
    state.className = `feed-state state-${s}`
    retry.hidden = s !== 'reconnecting'
  }

  const render = () => {
    for (const e of ctx.store.feed) {
      if (!seenTypes.has(e.type)) {
        seenTypes.add(e.type)
        const options = [...seenTypes].sort()
        const value = typeSelect.value
        typeSelect.replaceChildren(h('option', { value: '' }, 'All types'), ...options.map((t) => h('option', { value: t }, t)))
        typeSelect.value = value
      }
    }
    const shown: LiveEvent[] = []
    for (let i = ctx.store.feed.length - 1; i >= 0 && shown.length < SHOWN; i--) {
      const e = ctx.store.feed[i]!
      if (!typeFilter || e.type === typeFilter) shown.push(e)
    }
    reconcile(list, shown, (e) => String(e.id), () => '', item)
    replace(emptyBox, shown.length ? null : empty(typeFilter ? 'No events of this type yet.' : 'No events yet. They appear here as they happen.'))
  }

  typeSelect.addEventListener('change', () => {
    typeFilter = typeSelect.value
    render()
  })

  const el = h(
    'div',
    { class: 'view' },
    h('header', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Events'), h('p', { class: 'lede' }, `Every change, as it happens. The page keeps the last ${FEED_MAX}.`)),
    h('div', { class: 'toolbar' }, field('Type', typeSelect), h('div', { class: 'feed-status' }, state, retry)),
    h('section', { class: 'panel flush', 'aria-label': 'Event feed' }, list, emptyBox),
  )
  const offFeed = ctx.store.on('feed', () => {
    render()
    renderState()
  })
  const offLive = ctx.store.on('live', renderState)
  renderState()
  render()
  return {
    el,
    title: 'Events',
    unmount() {
      offFeed()
      offLive()
    },
  }
}
