/**
 * NEXUS_MODELS_FILE for the hosts: read and validated at start (a bad file stops start-up with one
 * line), then handed to the functions. The Node host binds a live source that re-reads the file when
 * it changes; the workerd host, whose workers have no filesystem, passes the content as NEXUS_MODELS_JSON.
 */
import { readFileSync, statSync } from 'node:fs'
import { ConfigError, type Config } from '../lib/env.ts'
import { parseModelsFile } from '../lib/ai/models-file.ts'
import type { ModelsSource } from '../lib/ai/models.ts'

/** How often the Node host looks at the file's modification time, at most. */
const CHECK_EVERY_MS = 1_000

const readValid = (path: string, hosts: readonly string[]): string => {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError('NEXUS_MODELS_FILE', `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  const parsed = parseModelsFile(text, hosts)
  if (parsed.error !== undefined) throw new ConfigError('NEXUS_MODELS_FILE', `${path}: ${parsed.error}`)
  return text
}

/** The file's text, validated; undefined when NEXUS_MODELS_FILE is unset. Throws ConfigError. */
export const readModelsFile = (config: Config): string | undefined =>
  config.NEXUS_MODELS_FILE ? readValid(config.NEXUS_MODELS_FILE, config.OLLAMA_BASE_URL) : undefined

/**
 * A live source of the file for the Node host: validated now (throws ConfigError), re-read when its
 * modification time changes. An edit that does not validate keeps the last good text and says so once.
 */
export const createModelsSource = (
  config: Config,
  warn: (msg: string, fields: Record<string, unknown>) => void,
): ModelsSource | undefined => {
  const path = config.NEXUS_MODELS_FILE
  if (!path) return undefined
  let text = readValid(path, config.OLLAMA_BASE_URL)
  let mtime = statSync(path).mtimeMs
  let checkedAt = Date.now()
  return {
    read() {
      const now = Date.now()
      if (now - checkedAt < CHECK_EVERY_MS) return text
      checkedAt = now
      try {
        const m = statSync(path).mtimeMs
        if (m === mtime) return text
        text = readValid(path, config.OLLAMA_BASE_URL)
        mtime = m
      } catch (err) {
        // Remember the bad version's time, so it is reported once and read again only after another edit.
        mtime = statSafe(path) ?? mtime
        warn('the models file changed but is not valid; keeping the previous aliases', { problem: (err as Error).message })
      }
      return text
    },
  }
}

const statSafe = (path: string) => {
  try {
    return statSync(path).mtimeMs
  } catch {
    return undefined
  }
}
