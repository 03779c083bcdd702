/** A tiny DOM builder: elements from a tag, attributes and children. Text is always a text node, never HTML. */

export type Child = Node | string | number | null | undefined | false | Child[]
type Listener = (event: Event) => void
export type Attrs = Record<string, string | number | boolean | null | undefined | Listener>

const SVG_NS = 'http://www.w3.org/2000/svg'

const setAttrs = (el: Element, attrs: Attrs | null | undefined) => {
  if (!attrs) return
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (name.startsWith('on')) {
      // Handlers only as functions: a string here would be script in an attribute.
      if (typeof value !== 'function') throw new Error(`attribute ${name} must be a function`)
      el.addEventListener(name.slice(2).toLowerCase(), value)
      continue
    }
    if (typeof value === 'function') throw new Error(`attribute ${name} must not be a function`)
    el.setAttribute(name, value === true ? '' : String(value))
  }
}

const append = (parent: Node, children: Child[]) => {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(parent, child)
    else if (typeof child === 'string' || typeof child === 'number') parent.appendChild(document.createTextNode(String(child)))
    else parent.appendChild(child)
  }
}

/** An HTML element. `on<event>` attributes take functions; every other value is set as an attribute. */
export const h = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] => {
  const el = document.createElement(tag)
  setAttrs(el, attrs)
  append(el, children)
  return el
}

/** An SVG element (for charts). */
export const s = <K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): SVGElementTagNameMap[K] => {
  const el = document.createElementNS(SVG_NS, tag)
  setAttrs(el, attrs)
  append(el, children)
  return el
}

/** Replaces the children of `el`. */
export const replace = (el: Element, ...children: Child[]) => {
  el.replaceChildren()
  append(el, children)
}

/** Sets text if it changed (keeps selections and screen readers quiet when nothing did). */
export const setText = (el: Element, text: string) => {
  if (el.textContent !== text) el.textContent = text
}

/**
 * Keeps `parent`'s children in step with `items`: an element is reused while its item's signature is
 * unchanged, and rebuilt otherwise; focus inside a rebuilt element moves to its counterpart.
 */
export const reconcile = <T>(
  parent: Element,
  items: readonly T[],
  key: (item: T) => string,
  signature: (item: T) => string,
  render: (item: T) => HTMLElement,
) => {
  const existing = new Map<string, HTMLElement>()
  for (const child of Array.from(parent.children)) {
    const k = (child as HTMLElement).dataset.key
    if (k !== undefined) existing.set(k, child as HTMLElement)
  }
  const active = document.activeElement as HTMLElement | null
  let cursor: Element | null = parent.firstElementChild
  for (const item of items) {
    const k = key(item)
    const sig = signature(item)
    let el = existing.get(k)
    existing.delete(k)
    if (el && el.dataset.sig !== sig) {
      const fresh = render(item)
      fresh.dataset.key = k
      fresh.dataset.sig = sig
      const focusKey = active && el.contains(active) ? active.dataset.focus : undefined
      el.replaceWith(fresh)
      if (cursor === el) cursor = fresh
      el = fresh
      if (focusKey) el.querySelector<HTMLElement>(`[data-focus="${CSS.escape(focusKey)}"]`)?.focus()
    } else if (!el) {
      el = render(item)
      el.dataset.key = k
      el.dataset.sig = sig
    }
    if (el !== cursor) parent.insertBefore(el, cursor)
    else cursor = cursor.nextElementSibling
  }
  for (const el of existing.values()) el.remove()
}
