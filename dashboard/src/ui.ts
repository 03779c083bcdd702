/** Small building blocks shared by the views: badges, times, fields, notices, panels. */
import { h, type Child } from './dom.ts'
import { absolute, relative } from './format.ts'

let fieldSeq = 0
export const uid = (prefix: string) => `${prefix}-${++fieldSeq}`

/** A status badge; the text says the status, so colour is never the only cue. */
export const badge = (status: string, label = status) => h('span', { class: `badge badge-${status.replace(/[^a-z_-]/gi, '')}` }, label)

/** A time shown relative ("12 sec. ago"), absolute on hover; refreshed by {@link refreshTimes}. */
export const when = (iso: string | null | undefined) =>
  iso ? h('time', { datetime: iso, title: absolute(iso), 'data-rel': '' }, relative(iso)) : h('span', { class: 'muted' }, 'never')

/** Updates every relative time on the page. */
export const refreshTimes = () => {
  const now = Date.now()
  for (const el of document.querySelectorAll<HTMLTimeElement>('time[data-rel]')) {
    const text = relative(el.dateTime, now)
    if (el.textContent !== text) el.textContent = text
  }
}

/** A labelled control: the label names the control for assistive technology. */
export const field = (label: string, control: HTMLElement, hint?: string) => {
  const id = control.id || uid('f')
  control.id = id
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl)
}

export const panel = (title: string, ...children: Child[]) => {
  const headingId = uid('p')
  return h('section', { class: 'panel', 'aria-labelledby': headingId }, h('h2', { id: headingId }, title), ...children)
}

/** A message region: `role=alert` for errors (announced at once), `role=status` otherwise. */
export const notice = (kind: 'error' | 'info' | 'ok' | 'warn', ...children: Child[]) =>
  h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children)

export const empty = (text: string) => h('p', { class: 'empty' }, text)

export const chips = (items: string[]) =>
  items.length ? h('ul', { class: 'chips', 'aria-label': 'capabilities' }, items.map((c) => h('li', { class: 'chip' }, c))) : h('span', { class: 'muted' }, 'none')

/** A table whose cells carry their column's name, so small screens can show rows as cards. */
export const table = (caption: string, columns: string[], body: HTMLTableSectionElement, className = '', optional: string[] = []) =>
  h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: `grid ${className}` },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: optional.includes(c) ? 'opt' : null }, c)))),
      body,
    ),
  )

export const cell = (label: string, ...children: Child[]) => h('td', { 'data-label': label }, h('div', { class: 'cv' }, ...children))

/** A cell small screens leave out (details that the wide table has room for). */
export const optCell = (label: string, ...children: Child[]) => {
  const td = cell(label, ...children)
  td.classList.add('opt')
  return td
}

/** A button that asks "sure?" in place (no dialog) before running `action`. */
export const confirmButton = (label: string, confirmLabel: string, action: () => Promise<void> | void, className = 'danger') => {
  let armed = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const button = h('button', { type: 'button', class: `btn ${className}` }, label)
  const disarm = () => {
    armed = false
    button.textContent = label
    button.classList.remove('armed')
  }
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true
      button.textContent = confirmLabel
      button.classList.add('armed')
      clearTimeout(timer)
      timer = setTimeout(disarm, 5000)
      return
    }
    clearTimeout(timer)
    disarm()
    button.disabled = true
    try {
      await action()
    } finally {
      button.disabled = false
    }
  })
  button.addEventListener('blur', () => {
    if (armed) timer = setTimeout(disarm, 300)
  })
  return button
}

/** The page's polite announcer for screen readers. */
export const announce = (text: string) => {
  const el = document.getElementById('announcer')
  if (!el) return
  el.textContent = ''
  // A separate task, so the same text twice is announced twice.
  setTimeout(() => (el.textContent = text), 30)
}
