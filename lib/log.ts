/** Structured JSON logging that never prints a secret: sensitive keys and token-shaped values are redacted. */
import type { LogLevel } from './env.ts'

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

const SENSITIVE_KEY = /pass(word)?|secret|token|authorization|cookie|api[-_]?key|private|credential|^key$|_key$|hash/i
const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^:/@\s]+):([^@/\s]+)@/gi
const BEARER = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]+/gi
const GATEWAY_KEY = /\bnx-[A-Za-z0-9_-]{8,}/g

/** Removes credentials from free text: JWTs, bearer values, passwords inside URLs, gateway keys. */
export const scrub = (text: string): string =>
  text
    .replace(JWT, '[redacted-jwt]')
    .replace(BEARER, '$1 [redacted]')
    .replace(URL_CREDENTIALS, '$1$2:[redacted]@')
    .replace(GATEWAY_KEY, 'nx-[redacted]')

const redact = (value: unknown, depth = 0): unknown => {
  if (typeof value === 'string') return scrub(value)
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: scrub(value.message) }
    const code = (value as { code?: unknown }).code
    if (code !== undefined) out.code = code
    if (value.stack) out.stack = scrub(value.stack)
    return out
  }
  if (depth > 6 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = SENSITIVE_KEY.test(k) ? '[redacted]' : redact(v, depth + 1)
  return out
}

export type LogFields = Record<string, unknown>
export type LogSink = (line: string, level: Exclude<LogLevel, 'silent'>) => void

export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  child(fields: LogFields): Logger
  readonly level: LogLevel
}

const defaultSink: LogSink = (line, level) => {
  if (level === 'error' || level === 'warn') console.error(line)
  else console.log(line)
}

/** Creates a logger that writes one JSON object per line. */
export const createLogger = (level: LogLevel, base: LogFields = {}, sink: LogSink = defaultSink): Logger => {
  const threshold = order[level]
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) => {
    if (order[lvl] < threshold) return
    const entry = { level: lvl, time: new Date().toISOString(), msg: scrub(msg), ...(redact({ ...base, ...fields }) as object) }
    sink(JSON.stringify(entry), lvl)
  }
  return {
    level,
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, sink),
  }
}
