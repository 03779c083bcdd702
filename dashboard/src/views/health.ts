/** Health: the database, the bus and Ollama, as GET /health reports them, refreshed every few seconds. */
import { every, messageOf, type Ctx, type View } from '../context.ts'
import { h, replace } from '../dom.ts'
import type { Check, Health } from '../types.ts'
import { badge, notice, when } from '../ui.ts'

const REFRESH_MS = 10_000

const card = (title: string, what: string, check: Check) =>
  h(
    'section',
    { class: `panel health-card health-${check.status}`, 'aria-label': title, 'data-check': title.toLowerCase() },
    h('div', { class: 'panel-head' }, h('h2', null, title), badge(check.status === 'ok' ? 'ok' : 'error', check.status === 'ok' ? 'OK' : 'Down')),
    h('p', { class: 'muted small' }, what),
    h(
      'dl',
      { class: 'facts' },
      check.driver ? [h('dt', null, 'Driver'), h('dd', { class: 'mono' }, check.driver)] : null,
      h('dt', null, 'Latency'),
      h('dd', null, `${check.latency_ms} ms`),
    ),
    check.message ? h('p', { class: 'check-message' }, check.message) : null,
    check.hosts?.length
      ? h(
          'ul',
          { class: 'hosts' },
          check.hosts.map((host) => h('li', null, badge(host.status === 'ok' ? 'ok' : 'error', host.status === 'ok' ? 'up' : 'down'), h('span', { class: 'mono' }, host.driver ?? '?'), h('span', { class: 'muted small' }, ` ${host.latency_ms} ms`))),
        )
      : null,
  )

export const healthView = (ctx: Ctx): View => {
  const cards = h('div', { class: 'cards' })
  const overall = h('div', { class: 'overall', role: 'status' })
  const errorBox = h('div')
  const refresh = h('button', { type: 'button', class: 'btn' }, 'Refresh now')
  let checkedAt: string | undefined

  const load = async () => {
    refresh.disabled = true
    try {
      // 503 still carries the checks (the database is down): show them.
      const health = await ctx.api.get<Health>('/health', { auth: false, accept: [503] })
      checkedAt = new Date().toISOString()
      replace(errorBox)
      replace(
        overall,
        badge(health.status === 'ok' ? 'ok' : 'degraded', health.status === 'ok' ? 'All systems OK' : 'Degraded'),
        h('span', { class: 'muted small' }, ' checked ', when(checkedAt)),
      )
      replace(
        cards,
        card('Database', 'PostgreSQL: commands, events, users, keys.', health.checks.database),
        card('Bus', 'Redis (or the in-process bus): live events, caches, limits.', health.checks.redis),
        card('Ollama', 'The local model hosts behind the gateway.', health.checks.ollama),
      )
    } catch (err) {
      replace(errorBox, notice('error', `The health check could not be read: ${messageOf(err)}`))
      replace(overall, badge('error', 'Unreachable'), checkedAt ? h('span', { class: 'muted small' }, ' last answer ', when(checkedAt)) : null)
    } finally {
      refresh.disabled = false
    }
  }
  refresh.addEventListener('click', () => void load())

  const el = h(
    'div',
    { class: 'view' },
    h('header', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Health'), h('p', { class: 'lede' }, `Checked every ${REFRESH_MS / 1000} seconds while this page is open.`)),
    h('div', { class: 'toolbar' }, overall, refresh),
    errorBox,
    cards,
  )
  const stop = every(REFRESH_MS, () => void load())
  void load()
  return { el, title: 'Health', unmount: stop }
}
