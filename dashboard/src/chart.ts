/** A stacked bar chart over time, drawn as inline SVG with DOM calls; sized to its box, so text stays legible. */
import { h, s } from './dom.ts'
import { compact, num } from './format.ts'

export interface Series {
  name: string
  values: number[]
}

export interface ChartInput {
  title: string
  /** Start of each bucket, epoch ms, ascending. */
  times: number[]
  series: Series[]
  unit: string
  bucket: 'minute' | 'hour' | 'day'
}

const PALETTE_SIZE = 8
const M = { top: 12, right: 10, bottom: 28, left: 46 }
const HEIGHT = 220

/** The y axis: a round step (1, 2 or 5 × 10^k, never below 1) and a top that is a whole number of steps. */
const yScale = (v: number) => {
  if (v <= 0) return { max: 1, step: 1 }
  const raw = v / 4
  const p = 10 ** Math.floor(Math.log10(raw))
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw) ?? 10 * p)
  return { max: step * Math.ceil(v / step), step }
}

const timeLabel = (t: number, bucket: ChartInput['bucket']) => {
  const d = new Date(t)
  if (bucket === 'day') return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
}

const draw = (input: ChartInput, width: number): SVGSVGElement => {
  const w = Math.max(260, Math.floor(width))
  const plotW = w - M.left - M.right
  const plotH = HEIGHT - M.top - M.bottom
  const n = input.times.length
  const totals = input.times.map((_, i) => input.series.reduce((sum, se) => sum + (se.values[i] ?? 0), 0))
  const { max, step } = yScale(Math.max(0, ...totals))
  const grand = totals.reduce((a, b) => a + b, 0)
  const y = (v: number) => M.top + plotH - (v / max) * plotH
  const slot = plotW / Math.max(1, n)
  const barW = Math.max(1, Math.min(28, slot * 0.72))
  const svg = s('svg', {
    width: w,
    height: HEIGHT,
    viewBox: `0 0 ${w} ${HEIGHT}`,
    class: 'chart-svg',
    role: 'img',
    'aria-label': `${input.title}: ${num(grand)} ${input.unit} in ${n} ${input.bucket}s`,
  })
  // Grid and y axis: whole-number steps (counts never come in fractions), none on an empty chart.
  const steps = grand === 0 ? 0 : Math.round(max / step)
  for (let i = 0; i <= steps; i++) {
    const v = step * i
    const yy = Math.round(y(v)) + 0.5
    svg.append(s('line', { x1: M.left, x2: w - M.right, y1: yy, y2: yy, class: i === 0 ? 'axis' : 'gridline' }))
    if (steps) svg.append(s('text', { x: M.left - 6, y: yy + 4, 'text-anchor': 'end', class: 'tick' }, compact(v)))
  }
  // Bars, stacked in series order.
  const bars = s('g', { class: 'bars' })
  input.times.forEach((t, i) => {
    let base = 0
    const x = M.left + slot * i + (slot - barW) / 2
    input.series.forEach((se, k) => {
      const v = se.values[i] ?? 0
      if (v <= 0) return
      const top = y(base + v)
      const height = Math.max(1, y(base) - top)
      bars.append(
        s(
          'rect',
          { x: x.toFixed(1), y: top.toFixed(1), width: barW.toFixed(1), height: height.toFixed(1), class: `c${k % PALETTE_SIZE}${se.name === 'other' ? ' c-other' : ''}` },
          s('title', null, `${se.name} · ${timeLabel(t, input.bucket)}: ${num(v)} ${input.unit}`),
        ),
      )
      base += v
    })
  })
  svg.append(bars)
  // X labels, spaced so they never overlap.
  const every = Math.max(1, Math.ceil(64 / slot))
  input.times.forEach((t, i) => {
    if (i % every !== 0) return
    svg.append(s('text', { x: (M.left + slot * i + slot / 2).toFixed(1), y: HEIGHT - 8, 'text-anchor': 'middle', class: 'tick' }, timeLabel(t, input.bucket)))
  })
  if (grand === 0)
    svg.append(s('text', { x: M.left + plotW / 2, y: M.top + plotH / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'No traffic in this period'))
  return svg
}

/** A figure with the chart and a legend of totals; redraws when its width changes. */
export const stackedBars = (input: ChartInput): HTMLElement => {
  const box = h('div', { class: 'chart-box' })
  const legend = h(
    'ul',
    { class: 'legend' },
    input.series.map((se, k) =>
      h(
        'li',
        null,
        h('span', { class: `swatch c${k % PALETTE_SIZE}${se.name === 'other' ? ' c-other' : ''}`, 'aria-hidden': 'true' }),
        h('span', { class: 'legend-name' }, se.name),
        h('span', { class: 'legend-total muted' }, `${num(se.values.reduce((a, b) => a + b, 0))} ${input.unit}`),
      ),
    ),
  )
  const figure = h('figure', { class: 'chart' }, h('figcaption', null, input.title), box, input.series.length ? legend : null)
  let drawnWidth = 0
  const redraw = () => {
    const width = box.clientWidth
    if (!width || Math.abs(width - drawnWidth) < 2) return
    drawnWidth = width
    box.replaceChildren(draw(input, width))
  }
  new ResizeObserver(redraw).observe(box)
  return figure
}

/** Builds aligned series from rows, keeping the `limit` largest and folding the rest into "other". */
export const toSeries = <R>(rows: R[], times: number[], step: number, nameOf: (row: R) => string, timeOf: (row: R) => number, valueOf: (row: R) => number, limit = 7): Series[] => {
  const start = times[0] ?? 0
  const byName = new Map<string, number[]>()
  for (const r of rows) {
    const i = Math.floor((timeOf(r) - start) / step)
    if (i < 0 || i >= times.length) continue
    const name = nameOf(r)
    let values = byName.get(name)
    if (!values) byName.set(name, (values = times.map(() => 0)))
    values[i]! += valueOf(r)
  }
  const all = [...byName.entries()].map(([name, values]) => ({ name, values })).sort((a, b) => sum(b.values) - sum(a.values))
  if (all.length <= limit) return all
  const other = { name: 'other', values: times.map(() => 0) }
  for (const se of all.slice(limit)) se.values.forEach((v, i) => (other.values[i]! += v))
  return [...all.slice(0, limit), other]
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
