/** Shapes of what the public API returns, as far as the dashboard reads them. */

export interface Agent {
  agent_id: string
  name: string
  status: 'online' | 'offline'
  capabilities: string[]
  last_seen_at: string | null
  registered_at?: string
}

export type CommandStatus = 'queued' | 'dispatched' | 'completed' | 'failed'

export interface Command {
  command_id: string
  text: string
  agent_id: string | null
  status: CommandStatus
  result?: string | null
  data?: unknown
  error?: string | null
  attempts?: number
  max_attempts?: number
  routed_by_rule?: number | null
  created_by?: string | null
  created_at: string | null
  updated_at: string | null
  dispatched_at?: string | null
  finished_at?: string | null
}

export interface CommandPage {
  commands: Command[]
  next_cursor: string | null
}

export interface Check {
  status: 'ok' | 'error'
  latency_ms: number
  driver?: string
  message?: string
  hosts?: Check[]
}

export interface Health {
  status: 'ok' | 'degraded'
  checks: { database: Check; redis: Check; ollama: Check }
}

export interface ModelObject {
  id: string
  owned_by: string
  created: number
}

export interface Alias {
  alias: string
  target: string
  pool: string
  enabled: boolean
  source: 'default' | 'file' | 'database'
}

export interface GatewayKey {
  id: string
  name: string
  key_prefix: string
  allowed_models: string[] | null
  rpm_limit: number | null
  tpm_limit: number | null
  budget_tokens: number | null
  used_tokens: number
  created_at: string
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
}

export interface UsageBucket {
  bucket: string
  model?: string
  key_id?: string | null
  requests: number
  errors: number
  prompt_tokens: number | string
  completion_tokens: number | string
  avg_latency_ms: number | null
}

export interface UsageReport {
  from: string
  to: string
  bucket: 'minute' | 'hour' | 'day'
  buckets: UsageBucket[]
}

export interface Jwks {
  keys: Array<{ kid: string; alg?: string }>
}
