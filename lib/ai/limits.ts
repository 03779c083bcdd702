/**
 * Per-key limits over the bus, in fixed one-minute windows: requests per minute (counted when a
 * request starts), tokens per minute (checked before, charged after, with Ollama's real counts), and an
 * optional lifetime budget in tokens. Over a limit: 429 with Retry-After = the rest of the window.
 */
import type { Bus } from '../bus/index.ts'
import { ApiError } from '../errors.ts'
import type { GatewayKey } from './keys.ts'

const WINDOW_SECONDS = 60

const windowOf = (now: number) => Math.floor(now / 1000 / WINDOW_SECONDS)
const secondsLeft = (now: number) => WINDOW_SECONDS - ((now / 1000) % WINDOW_SECONDS)

const rpmKey = (id: string, w: number) => `gw:rpm:${id}:${w}`
const tpmKey = (id: string, w: number) => `gw:tpm:${id}:${w}`
const budgetKey = (id: string) => `gw:budget:${id}`

const limited = (message: string, retryAfter: number, code = 'rate_limit_exceeded', extra: Record<string, string> = {}) =>
  new ApiError(429, code, message, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfter))), ...extra },
  })

/**
 * Counts this request against the key's limits and throws a 429 when one is reached. One bus round
 * trip (the reads and the increment go out together); nothing when the key has no limits.
 */
export const checkLimits = async (bus: Bus, key: GatewayKey, now = Date.now()): Promise<void> => {
  const w = windowOf(now)
  const [requests, tokens, budgetUsed] = await Promise.all([
    key.rpm_limit != null ? bus.incr(rpmKey(key.id, w), 1, WINDOW_SECONDS + 5) : undefined,
    key.tpm_limit != null ? bus.get(tpmKey(key.id, w)) : undefined,
    key.budget_tokens != null ? bus.get(budgetKey(key.id)) : undefined,
  ])
  if (requests !== undefined && requests > key.rpm_limit!)
    throw limited(
      `Rate limit reached: this key allows ${key.rpm_limit} requests per minute. Try again in ${Math.ceil(secondsLeft(now))} s.`,
      secondsLeft(now),
    )
  if (tokens !== undefined && tokens !== null && Number(tokens) >= key.tpm_limit!)
    throw limited(
      `Rate limit reached: this key allows ${key.tpm_limit} tokens per minute. Try again in ${Math.ceil(secondsLeft(now))} s.`,
      secondsLeft(now),
    )
  if (key.budget_tokens != null) {
    let used = budgetUsed === undefined || budgetUsed === null ? undefined : Number(budgetUsed)
    if (used === undefined) {
      // First sight on this bus (or the bus lost it): start from what the database has counted.
      used = key.used_tokens
      await bus.set(budgetKey(key.id), String(used), { onlyIfAbsent: true })
    }
    if (used >= key.budget_tokens)
      // A budget does not refill by waiting: tell clients not to retry (the openai SDK honours x-should-retry).
      throw limited(`This key's budget of ${key.budget_tokens} tokens is used up.`, 3600, 'insufficient_quota', {
        'x-should-retry': 'false',
      })
  }
}

/** Charges a finished request's tokens to the key's minute window and budget. */
export const chargeTokens = async (bus: Bus, key: GatewayKey, tokens: number, now = Date.now()): Promise<void> => {
  if (tokens <= 0) return
  await Promise.all([
    key.tpm_limit != null ? bus.incr(tpmKey(key.id, windowOf(now)), tokens, WINDOW_SECONDS + 5) : undefined,
    key.budget_tokens != null ? bus.incr(budgetKey(key.id), tokens) : undefined,
  ])
}
