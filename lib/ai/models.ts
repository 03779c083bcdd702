/**
 * Model alias resolution: the contract's defaults, overridden by the models file, overridden by the
 * admin-managed rows of `model_aliases`. Rows are cached briefly and the file is re-read when it
 * changes, so a change applies without a restart. A name that is no alias goes to Ollama as is.
 */
import { ApiError } from '../errors.ts'
import type { Bindings, Services } from '../services.ts'
import { AliasParams, ModelName, parseModelsFile, type ModelsFile } from './models-file.ts'
import { isLongLived } from '../state.ts'
import { gatewayState } from './state.ts'

/** The contract's default aliases, all to one small local model. */
export const DEFAULT_TARGET = 'llama3.2:3b'
export const DEFAULT_ALIASES: readonly string[] = [
  'gemini-1.5-flash',
  'gemini-2.5-flash',
  'gemini-3-flash',
  'gemini-pro',
  'gpt-4o',
  'gpt-4o-mini',
  'gpt-4',
  'claude-3-5-sonnet',
]

/** How long rows of `model_aliases` are trusted before they are read again. */
export const ALIAS_ROWS_TTL_MS = 2_000

export type AliasSource = 'default' | 'file' | 'database'

export interface AliasEntry {
  alias: string
  target: string
  params: AliasParams
  /** Pool name; `default` is every configured host. */
  pool: string
  enabled: boolean
  source: AliasSource
  created_at: string | null
  updated_at: string | null
}

/** Where a request for a model name goes. */
export interface ResolvedModel {
  /** The name the client asked for. */
  name: string
  /** The Ollama model that serves it. */
  upstream: string
  params: AliasParams
  /** Base URLs of the hosts that may serve it. */
  hosts: readonly string[]
  source: AliasSource | 'ollama'
}

/** What the Node host binds as NEXUS_MODELS_SOURCE: the models file's current text, re-read when it changes. */
export interface ModelsSource {
  read(): string | undefined
}

interface AliasRow {
  alias: string
  target: string
  params: unknown
  pool: string | null
  enabled: boolean
  created_at: Date
  updated_at: Date
}

interface ModelsState {
  fileText?: string
  file?: ModelsFile
  rows?: { at: number; entries: AliasEntry[] }
  pending?: Promise<AliasEntry[]>
  /** The merged table, kept while the file and the rows it was built from are current. */
  table?: { file: ModelsFile | undefined; rows: AliasEntry[]; byName: Map<string, AliasEntry>; sorted: AliasEntry[] }
}

const stateOf = (services: Services) => gatewayState<ModelsState>(services, 'models', () => ({}))

const isModelsSource = (v: unknown): v is ModelsSource =>
  typeof v === 'object' && v !== null && typeof (v as ModelsSource).read === 'function'

/** The models file in effect: the host's live source (Node) or NEXUS_MODELS_JSON, parsed once per text. */
export const modelsFileOf = (services: Services, bindings: Bindings | undefined): ModelsFile | undefined => {
  const source = bindings?.NEXUS_MODELS_SOURCE
  const text = isModelsSource(source) ? source.read() : services.config.NEXUS_MODELS_JSON
  if (!text) return undefined
  const state = stateOf(services)
  if (state.fileText === text && state.file) return state.file
  const parsed = parseModelsFile(text, services.config.OLLAMA_BASE_URL)
  if (parsed.error !== undefined) {
    // The host validated it at start; a bad edit since keeps the last good version in force.
    services.log.warn('the models file is invalid; keeping the previous aliases', { problem: parsed.error })
    return state.file
  }
  state.fileText = text
  state.file = parsed.file
  return parsed.file
}

const loadRows = async (services: Services): Promise<AliasEntry[]> => {
  const { db } = services
  const rows = await db.sql<AliasRow[]>`
    select alias, target, params, pool, enabled, created_at, updated_at from ${db.t.model_aliases} order by alias`
  return rows.map((r) => {
    const params = AliasParams.safeParse(r.params ?? {})
    return {
      alias: r.alias,
      target: r.target,
      params: params.success ? params.data : {},
      pool: r.pool ?? 'default',
      enabled: r.enabled,
      source: 'database' as const,
      created_at: r.created_at.toISOString(),
      updated_at: r.updated_at.toISOString(),
    }
  })
}

/** The admin-managed alias rows, cached for {@link ALIAS_ROWS_TTL_MS}. */
const aliasRows = async (services: Services): Promise<AliasEntry[]> => {
  const state = stateOf(services)
  const now = Date.now()
  if (state.rows && now - state.rows.at < ALIAS_ROWS_TTL_MS) return state.rows.entries
  const load = async () => {
    const entries = await loadRows(services)
    state.rows = { at: Date.now(), entries }
    return entries
  }
  // Concurrent requests on a long-lived host share one read; on workerd a promise must not cross requests.
  if (!isLongLived(services)) return load()
  return (state.pending ??= load().finally(() => (state.pending = undefined)))
}

/** Forgets the cached rows, so the next request reads them again (after an admin change). */
export const invalidateAliases = (services: Services): void => {
  stateOf(services).rows = undefined
}

/**
 * Every alias in effect, by name: defaults, then the file's, then the database's (a disabled row hides
 * the alias). Includes disabled database rows, flagged, so the admin API can show them.
 */
export const effectiveAliases = async (services: Services, bindings: Bindings | undefined): Promise<AliasEntry[]> =>
  (await aliasTable(services, bindings)).sorted

const aliasTable = async (services: Services, bindings: Bindings | undefined) => {
  const file = modelsFileOf(services, bindings)
  const rows = await aliasRows(services)
  const state = stateOf(services)
  if (state.table && state.table.file === file && state.table.rows === rows) return state.table
  const byName = new Map<string, AliasEntry>()
  for (const alias of DEFAULT_ALIASES)
    byName.set(alias, {
      alias,
      target: DEFAULT_TARGET,
      params: {},
      pool: 'default',
      enabled: true,
      source: 'default',
      created_at: null,
      updated_at: null,
    })
  for (const [alias, spec] of Object.entries(file?.aliases ?? {}))
    byName.set(alias, {
      alias,
      target: spec.model,
      params: spec.params,
      pool: spec.pool ?? 'default',
      enabled: true,
      source: 'file',
      created_at: null,
      updated_at: null,
    })
  for (const row of rows) byName.set(row.alias, row)
  const sorted = [...byName.values()].sort((a, b) => a.alias.localeCompare(b.alias))
  state.table = { file, rows, byName, sorted }
  return state.table
}

/** The base URLs of a named pool (every configured host for `default` or an unknown name). */
export const poolHosts = (services: Services, bindings: Bindings | undefined, pool: string): readonly string[] => {
  const all = services.config.OLLAMA_BASE_URL
  if (pool === 'default') return all
  return modelsFileOf(services, bindings)?.pools[pool] ?? all
}

/** The names of the pools in effect (for validating admin input). */
export const poolNames = (services: Services, bindings: Bindings | undefined): string[] => [
  'default',
  ...Object.keys(modelsFileOf(services, bindings)?.pools ?? {}),
]

/** OpenAI's wording for a model that does not exist (or is hidden from the caller). */
export const modelNotFound = (name: string) =>
  new ApiError(404, 'model_not_found', `The model \`${name}\` does not exist or you do not have access to it.`, {
    param: 'model',
  })

/**
 * Resolves the model a client asked for. An alias maps to its target, parameters and pool; any other
 * well-formed name goes to Ollama unchanged (Ollama answers 404 for a model it does not have, which
 * the caller turns into `model_not_found`). A malformed name is `model_not_found` at once.
 */
export const resolveModel = async (services: Services, bindings: Bindings | undefined, name: string): Promise<ResolvedModel> => {
  if (!ModelName.safeParse(name).success) throw modelNotFound(name.slice(0, 200))
  const entry = (await aliasTable(services, bindings)).byName.get(name)
  if (entry) {
    if (!entry.enabled) throw modelNotFound(name)
    return {
      name,
      upstream: entry.target,
      params: entry.params,
      hosts: poolHosts(services, bindings, entry.pool),
      source: entry.source,
    }
  }
  return { name, upstream: name, params: {}, hosts: services.config.OLLAMA_BASE_URL, source: 'ollama' }
}
