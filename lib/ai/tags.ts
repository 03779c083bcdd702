/**
 * The models Ollama has: `/api/tags` of every configured host, merged and cached for
 * {@link TAGS_TTL_MS}, fetched only through the egress guard.
 */
import type { Services } from '../services.ts'
import { createEgressFetch } from './egress.ts'
import { ollamaDown } from './pool.ts'
import { isLongLived } from '../state.ts'
import { gatewayState } from './state.ts'

export const TAGS_TTL_MS = 30_000
const TAGS_TIMEOUT_MS = 3_000

export interface LocalModel {
  name: string
  /** Seconds since the epoch (from `modified_at`). */
  modified: number
  /** Hosts (`host:port`) that have it. */
  hosts: string[]
}

interface TagsState {
  at: number
  models: LocalModel[]
  pending?: Promise<LocalModel[]>
}

const stateOf = (services: Services) => gatewayState<TagsState>(services, 'tags', () => ({ at: 0, models: [] }))

interface TagsBody {
  models?: Array<{ name?: unknown; model?: unknown; modified_at?: unknown }>
}

const fetchTags = async (services: Services): Promise<LocalModel[]> => {
  const hosts = services.config.OLLAMA_BASE_URL
  const egress = createEgressFetch(hosts, services.upstreamFetch)
  const byName = new Map<string, LocalModel>()
  let answered = 0
  await Promise.all(
    hosts.map(async (base) => {
      try {
        const res = await egress(`${base}/api/tags`, { signal: AbortSignal.timeout(TAGS_TIMEOUT_MS) })
        if (!res.ok) {
          await res.body?.cancel()
          return
        }
        const body = (await res.json()) as TagsBody
        answered++
        for (const m of body.models ?? []) {
          const name = typeof m.name === 'string' ? m.name : typeof m.model === 'string' ? m.model : undefined
          if (!name) continue
          const modified = typeof m.modified_at === 'string' ? Math.floor(Date.parse(m.modified_at) / 1000) || 0 : 0
          const entry = byName.get(name) ?? { name, modified, hosts: [] }
          entry.hosts.push(new URL(base).host)
          entry.modified = Math.max(entry.modified, modified)
          byName.set(name, entry)
        }
      } catch {
        // This host is down or slow: the others answer for the pool.
      }
    }),
  )
  if (answered === 0) throw ollamaDown(hosts.length, 1)
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name))
}

/** The local models, cached; a 503 (Ollama is down) when no host answers and nothing is cached. */
export const localModels = async (services: Services): Promise<LocalModel[]> => {
  const state = stateOf(services)
  if (Date.now() - state.at < TAGS_TTL_MS) return state.models
  const load = async () => {
    const models = await fetchTags(services)
    state.models = models
    state.at = Date.now()
    return models
  }
  if (!isLongLived(services)) return load()
  return (state.pending ??= load().finally(() => (state.pending = undefined)))
}

/** The cached local model names, without fetching (for bounding metric labels). */
export const knownLocalModel = (services: Services, name: string): boolean =>
  stateOf(services).models.some((m) => m.name === name)
