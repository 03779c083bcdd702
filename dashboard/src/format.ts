/** Formatting of times, durations and numbers for display. */

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' })
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
const numberFmt = new Intl.NumberFormat()

/** "12 sec. ago", "3 min. ago", "yesterday"... from an ISO time; "never" for none. */
export const relative = (iso: string | null | undefined, now = Date.now()): string => {
  if (!iso) return 'never'
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  const seconds = Math.round((t - now) / 1000)
  const abs = Math.abs(seconds)
  if (abs < 5) return 'just now'
  if (abs < 60) return rtf.format(seconds, 'second')
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour')
  return rtf.format(Math.round(seconds / 86400), 'day')
}

export const absolute = (iso: string | null | undefined): string => {
  if (!iso) return '—'
  const t = Date.parse(iso)
  return Number.isNaN(t) ? iso : dateTime.format(t)
}

export const clock = (iso: string | null | undefined): string => {
  if (!iso) return '—'
  const t = Date.parse(iso)
  return Number.isNaN(t) ? iso : timeOnly.format(t)
}

/** "120 ms", "4.2 s", "3 min 5 s", "2 h 4 min". */
export const duration = (ms: number | null | undefined): string => {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—'
  if (ms < 0) ms = 0
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const s = Math.round(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

export const between = (from: string | null | undefined, to: string | null | undefined): number | null =>
  from && to ? Date.parse(to) - Date.parse(from) : null

export const num = (n: number | string | null | undefined): string => {
  const v = typeof n === 'string' ? Number(n) : n
  return v === null || v === undefined || Number.isNaN(v) ? '—' : numberFmt.format(v)
}

/** Compact numbers for chart axes: 950, 1.2k, 3.4M. */
export const compact = (n: number): string => {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`
  return String(Math.round(n))
}

/** Pretty JSON for display as text. */
export const pretty = (value: unknown): string => {
  try {
    return JSON.stringify(value, null, 2) ?? String(value)
  } catch {
    return String(value)
  }
}

/** A one-line excerpt. */
export const excerpt = (text: string, max = 140): string => {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}
