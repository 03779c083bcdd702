/** Gateway: models and aliases, usage per model and per key over time, and for admins the keys and signing-key rotation. */
import { ApiFailure } from '../api.ts'
import { stackedBars, toSeries } from '../chart.ts'
import { messageOf, type Ctx, type View } from '../context.ts'
import { h, replace } from '../dom.ts'
import { num } from '../format.ts'
import { can } from '../session.ts'
import type { Alias, GatewayKey, Jwks, ModelObject, UsageBucket, UsageReport } from '../types.ts'
import { announce, badge, cell, confirmButton, empty, field, notice, optCell, panel, table, when } from '../ui.ts'

const RANGES = {
  '1h': { label: 'Last hour', ms: 3_600_000, bucket: 'minute', step: 60_000 },
  '24h': { label: 'Last day', ms: 86_400_000, bucket: 'hour', step: 3_600_000 },
  '7d': { label: 'Last 7 days', ms: 7 * 86_400_000, bucket: 'day', step: 86_400_000 },
  '30d': { label: 'Last 30 days', ms: 30 * 86_400_000, bucket: 'day', step: 86_400_000 },
} as const
type Range = keyof typeof RANGES
type Metric = 'requests' | 'tokens'

const value = (metric: Metric) => (b: UsageBucket) =>
  metric === 'requests' ? b.requests : Number(b.prompt_tokens) + Number(b.completion_tokens)

const modelsPanel = (ctx: Ctx) => {
  const box = h('div', null, h('p', { class: 'empty' }, 'Loading…'))
  void (async () => {
    try {
      const { data } = await ctx.api.get<{ data: ModelObject[] }>('/v1/models')
      const body = h(
        'tbody',
        null,
        data.map((m) => h('tr', null, cell('Model', h('span', { class: 'mono' }, m.id)), cell('Kind', m.owned_by === 'ollama' ? 'local model' : 'alias'))),
      )
      replace(box, data.length ? table('Models', ['Model', 'Kind'], body, 'compact') : empty('No models.'))
    } catch (err) {
      replace(box, notice(err instanceof ApiFailure && err.status === 503 ? 'warn' : 'error', messageOf(err)))
    }
  })()
  return panel('Models', h('p', { class: 'muted small' }, 'What clients may ask for at /v1/models: aliases and the local Ollama models.'), box)
}

const aliasesPanel = (ctx: Ctx) => {
  const box = h('div', null, h('p', { class: 'empty' }, 'Loading…'))
  void (async () => {
    try {
      const { aliases } = await ctx.api.get<{ aliases: Alias[] }>('/api/v1/gateway/aliases')
      const body = h(
        'tbody',
        null,
        aliases.map((a) =>
          h(
            'tr',
            null,
            cell('Alias', h('span', { class: 'mono' }, a.alias)),
            cell('Model', h('span', { class: 'mono' }, a.target)),
            optCell('Pool', a.pool),
            optCell('From', a.source),
            cell('State', badge(a.enabled ? 'ok' : 'offline', a.enabled ? 'on' : 'off')),
          ),
        ),
      )
      replace(box, aliases.length ? table('Aliases', ['Alias', 'Model', 'Pool', 'From', 'State'], body, 'compact', ['Pool', 'From']) : empty('No aliases.'))
    } catch (err) {
      replace(box, notice('error', messageOf(err)))
    }
  })()
  return panel('Aliases', h('p', { class: 'muted small' }, 'Hosted model names and the local model each one runs on.'), box)
}

const usagePanel = (ctx: Ctx, keyNames: () => Map<string, string>) => {
  let range: Range = '24h'
  let metric: Metric = 'requests'
  const charts = h('div', { class: 'charts' }, h('p', { class: 'empty' }, 'Loading…'))
  const rangeSelect = h('select', null, Object.entries(RANGES).map(([k, r]) => h('option', { value: k }, r.label)))
  rangeSelect.value = range
  const metricSelect = h('select', null, h('option', { value: 'requests' }, 'Requests'), h('option', { value: 'tokens' }, 'Tokens'))

  const load = async () => {
    const r = RANGES[range]
    const to = Date.now()
    const start = Math.floor((to - r.ms) / r.step) * r.step + r.step
    const times = Array.from({ length: Math.round(r.ms / r.step) }, (_, i) => start + i * r.step)
    const qs = (group: string) => new URLSearchParams({ bucket: r.bucket, group_by: group, from: new Date(start).toISOString(), to: new Date(to).toISOString() })
    try {
      const [byModel, byKey] = await Promise.all([
        ctx.api.get<UsageReport>(`/api/v1/gateway/usage?${qs('model')}`),
        ctx.api.get<UsageReport>(`/api/v1/gateway/usage?${qs('key')}`),
      ])
      const unit = metric === 'requests' ? 'requests' : 'tokens'
      const names = keyNames()
      const time = (b: UsageBucket) => Date.parse(b.bucket)
      replace(
        charts,
        stackedBars({ title: `Per model · ${r.label.toLowerCase()}`, times, unit, bucket: r.bucket, series: toSeries(byModel.buckets, times, r.step, (b) => b.model ?? '?', time, value(metric)) }),
        stackedBars({
          title: `Per key · ${r.label.toLowerCase()}`,
          times,
          unit,
          bucket: r.bucket,
          series: toSeries(byKey.buckets, times, r.step, (b) => (b.key_id ? (names.get(b.key_id) ?? `key ${b.key_id.slice(0, 8)}`) : 'tokens and master key'), time, value(metric)),
        }),
      )
    } catch (err) {
      replace(charts, notice('error', `Could not read the usage: ${messageOf(err)}`))
    }
  }
  rangeSelect.addEventListener('change', () => {
    range = rangeSelect.value as Range
    void load()
  })
  metricSelect.addEventListener('change', () => {
    metric = metricSelect.value as Metric
    void load()
  })
  return {
    el: panel('Usage', h('div', { class: 'toolbar inline' }, field('Period', rangeSelect), field('Measure', metricSelect)), charts),
    load,
  }
}

const keysPanel = (ctx: Ctx, onKeys: (keys: GatewayKey[]) => void) => {
  const body = h('tbody')
  const listBox = h('div')
  const secretBox = h('div', { 'aria-live': 'polite' })
  const formStatus = h('div')
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 128, autocomplete: 'off' })
  const models = h('input', { type: 'text', name: 'models', autocomplete: 'off', placeholder: 'all models' })
  const rpm = h('input', { type: 'number', name: 'rpm', min: 1, inputmode: 'numeric', placeholder: 'no limit' })
  const days = h('input', { type: 'number', name: 'days', min: 1, max: 3650, inputmode: 'numeric', placeholder: 'never' })
  const create = h('button', { type: 'submit', class: 'btn primary' }, 'Create key')

  const showSecret = (key: GatewayKey, secret: string) => {
    const code = h('code', { class: 'secret', id: 'new-key-secret' }, secret)
    const copy = h('button', { type: 'button', class: 'btn' }, 'Copy')
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(secret)
        copy.textContent = 'Copied'
      } catch {
        // No clipboard (an insecure origin): select it for a manual copy.
        getSelection()?.selectAllChildren(code)
      }
    })
    const done = h('button', { type: 'button', class: 'btn' }, 'Done, hide it')
    done.addEventListener('click', () => {
      replace(secretBox)
      name.focus()
    })
    replace(
      secretBox,
      h(
        'div',
        { class: 'notice notice-warn secret-box', role: 'status' },
        h('p', null, h('strong', null, `Key "${key.name}" created. `), 'Copy it now: it is shown only this once, and only its hash is kept.'),
        h('div', { class: 'secret-row' }, code, copy, done),
      ),
    )
    copy.focus()
  }

  const row = (k: GatewayKey) => {
    const limits = [k.rpm_limit ? `${num(k.rpm_limit)}/min` : null, k.tpm_limit ? `${num(k.tpm_limit)} tok/min` : null, k.budget_tokens ? `budget ${num(k.budget_tokens)}` : null, k.allowed_models ? k.allowed_models.join(', ') : null]
      .filter(Boolean)
      .join(' · ')
    const expired = k.expires_at !== null && Date.parse(k.expires_at) <= Date.now()
    const state = k.revoked_at ? 'revoked' : expired ? 'expired' : 'active'
    return h(
      'tr',
      { 'data-key-id': k.id },
      cell('Name', h('span', { class: 'name' }, k.name)),
      cell('Key', h('span', { class: 'mono' }, `${k.key_prefix}…`)),
      cell('Created', when(k.created_at)),
      cell('Last used', when(k.last_used_at)),
      cell('Tokens', num(k.used_tokens)),
      cell('Limits', limits || h('span', { class: 'muted' }, 'none')),
      cell('State', badge(state === 'active' ? 'ok' : 'offline', state)),
      cell(
        'Action',
        k.revoked_at
          ? ''
          : confirmButton('Revoke', 'Confirm revoke', async () => {
              try {
                await ctx.api.del(`/api/v1/gateway/keys/${encodeURIComponent(k.id)}`)
                announce(`Key ${k.name} revoked`)
                await load()
              } catch (err) {
                replace(formStatus, notice('error', `Could not revoke: ${messageOf(err)}`))
              }
            }),
      ),
    )
  }

  const load = async () => {
    try {
      const { keys } = await ctx.api.get<{ keys: GatewayKey[] }>('/api/v1/gateway/keys')
      onKeys(keys)
      replace(body, keys.map(row))
      replace(listBox, keys.length ? table('Gateway keys', ['Name', 'Key', 'Created', 'Last used', 'Tokens', 'Limits', 'State', 'Action'], body, 'keys') : empty('No gateway keys yet.'))
    } catch (err) {
      onKeys([])
      replace(listBox, notice('error', `Could not load the keys: ${messageOf(err)}`))
    }
  }

  const form = h(
    'form',
    { class: 'key-form', novalidate: true },
    h('div', { class: 'form-grid four' }, field('Name', name), field('Models', models, 'comma-separated; empty = all'), field('Requests per minute', rpm), field('Expires in days', days)),
    h('div', { class: 'form-actions' }, create),
    formStatus,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    if (!name.value.trim()) {
      replace(formStatus, notice('error', 'Give the key a name.'))
      name.focus()
      return
    }
    const body: Record<string, unknown> = { name: name.value.trim() }
    const list = models.value.split(',').map((m) => m.trim()).filter(Boolean)
    if (list.length) body.allowed_models = list
    if (rpm.value) body.rpm_limit = Number(rpm.value)
    if (days.value) body.expires_in = Math.round(Number(days.value) * 86400)
    create.disabled = true
    try {
      const created = await ctx.api.post<GatewayKey & { key: string }>('/api/v1/gateway/keys', body)
      replace(formStatus)
      form.reset()
      showSecret(created, created.key)
      announce('Key created; copy it now')
      await load()
    } catch (err) {
      replace(formStatus, notice('error', `Not created: ${messageOf(err)}`))
    } finally {
      create.disabled = false
    }
  })
  void load()
  return panel('Gateway keys', form, secretBox, listBox)
}

const signingPanel = (ctx: Ctx) => {
  const list = h('div')
  const status = h('div')
  const load = async () => {
    try {
      const jwks = await ctx.api.get<Jwks>('/.well-known/jwks.json', { auth: false })
      replace(list, h('ul', { class: 'kids' }, jwks.keys.map((k) => h('li', null, h('span', { class: 'mono kid' }, k.kid), h('span', { class: 'muted small' }, k.alg ?? '')))))
    } catch (err) {
      replace(list, notice('error', `Could not read the key set: ${messageOf(err)}`))
    }
  }
  const rotate = confirmButton(
    'Rotate signing key',
    'Confirm rotation',
    async () => {
      try {
        const { kid } = await ctx.api.post<{ kid: string }>('/api/v1/auth/keys/rotate')
        replace(status, notice('ok', 'New tokens are now signed with ', h('span', { class: 'mono' }, kid), '. Tokens signed before keep working until they expire.'))
        announce('Signing key rotated')
        await load()
      } catch (err) {
        replace(status, notice('error', `Not rotated: ${messageOf(err)}`))
      }
    },
    'warn',
  )
  void load()
  return panel('Signing keys', h('p', { class: 'muted small' }, 'The public keys in the JWKS. Rotation never breaks a live token.'), list, h('div', { class: 'form-actions' }, rotate), status)
}

export const gatewayView = (ctx: Ctx): View => {
  const admin = can(ctx.user, 'admin')
  let names = new Map<string, string>()
  const el = h(
    'div',
    { class: 'view' },
    h('header', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Gateway'), h('p', { class: 'lede' }, 'The OpenAI-compatible gateway in front of the local Ollama hosts.')),
  )
  const top = h('div', { class: 'two-col' }, modelsPanel(ctx))
  el.append(top)
  if (admin) {
    top.append(aliasesPanel(ctx))
    const usage = usagePanel(ctx, () => names)
    el.append(usage.el)
    let first = true
    el.append(
      keysPanel(ctx, (keys) => {
        names = new Map(keys.map((k) => [k.id, k.name]))
        // The per-key chart names keys: draw it once their names are known.
        if (first) {
          first = false
          void usage.load()
        }
      }),
    )
    el.append(signingPanel(ctx))
  } else {
    el.append(notice('info', 'Aliases, usage, gateway keys and signing keys are shown to admins.'))
  }
  return { el, title: 'Gateway' }
}
