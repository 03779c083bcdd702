/**
 * The models file (NEXUS_MODELS_FILE, or its JSON content as NEXUS_MODELS_JSON): model aliases, their
 * default parameters, and named host pools. Parsed and validated here, on every runtime.
 */
import * as z from 'zod'

/** An alias or model name as clients send it, e.g. `gpt-4o`, `llama3.2:3b`, `hf.co/org/model:Q4_K_M`. */
export const ModelName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,199}$/, 'must be a model name (letters, digits and _ . : / @ + -)')

/** Default generation parameters an alias applies; a request's own values win. Names follow Ollama's options. */
export const AliasParams = z
  .object({
    temperature: z.number().min(0).max(2),
    top_p: z.number().min(0).max(1),
    top_k: z.number().int().min(1).max(1000),
    min_p: z.number().min(0).max(1),
    /** Ollama's `num_predict`; a request's max_tokens / max_completion_tokens wins. */
    max_tokens: z.number().int().min(1).max(1_000_000),
    seed: z.number().int(),
    stop: z.array(z.string().min(1)).max(16),
    num_ctx: z.number().int().min(256).max(2_097_152),
    repeat_penalty: z.number().min(0).max(10),
    repeat_last_n: z.number().int().min(-1).max(100_000),
    /** Ollama's `think` (reasoning models); off unless an alias turns it on. */
    think: z.boolean(),
  })
  .partial()
  .strict()
export type AliasParams = z.infer<typeof AliasParams>

export const PoolName = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'must be a pool name (a-z 0-9 _ -)')

export const AliasSpec = z.union([
  ModelName.transform((model) => ({ model, params: {} as AliasParams, pool: undefined as string | undefined })),
  z
    .object({ model: ModelName, params: AliasParams.default({}), pool: PoolName.optional() })
    .strict()
    .transform((v) => ({ model: v.model, params: v.params, pool: v.pool })),
])
export type AliasSpec = z.output<typeof AliasSpec>

export const ModelsFile = z
  .object({
    /** alias -> model name, or { model, params, pool } */
    aliases: z.record(ModelName, AliasSpec).default({}),
    /** pool name -> Ollama base URLs, each one of OLLAMA_BASE_URL. `default` is every configured host. */
    pools: z.record(PoolName, z.array(z.string().min(1)).min(1)).default({}),
  })
  .strict()
export type ModelsFile = z.output<typeof ModelsFile>

const normalizeUrl = (raw: string) => {
  const u = new URL(raw.trim())
  return u.origin + u.pathname.replace(/\/+$/, '')
}

/**
 * Parses and validates the models file's text against the configured hosts. Returns the file, or an
 * error as one line naming what is wrong (for ConfigError). Pool hosts must be configured hosts:
 * the file can narrow where a model runs, never widen where the gateway may connect.
 */
export const parseModelsFile = (
  text: string,
  configuredHosts: readonly string[],
): { file: ModelsFile; error?: undefined } | { file?: undefined; error: string } => {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    return { error: `not valid JSON (${(err as Error).message})` }
  }
  const result = ModelsFile.safeParse(raw)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const path = issue.path.map(String).join('.')
    return { error: path ? `${path}: ${issue.message}` : issue.message }
  }
  const file = result.data
  for (const [name, urls] of Object.entries(file.pools)) {
    const normalized: string[] = []
    for (const raw of urls) {
      let url: string
      try {
        url = normalizeUrl(raw)
      } catch {
        return { error: `pools.${name}: "${raw}" is not a URL` }
      }
      if (!configuredHosts.includes(url))
        return { error: `pools.${name}: "${url}" is not one of the OLLAMA_BASE_URL hosts` }
      normalized.push(url)
    }
    file.pools[name] = normalized
  }
  for (const [alias, spec] of Object.entries(file.aliases))
    if (spec.pool && spec.pool !== 'default' && !file.pools[spec.pool])
      return { error: `aliases.${alias}.pool: no pool named "${spec.pool}" in "pools"` }
  return { file }
}
