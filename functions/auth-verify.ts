/** POST /api/v1/auth/verify — check an access token (JSON `{"token"}` or Bearer) and return its claims. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, type AppEnv } from '../lib/app.ts'
import { bearerToken } from '../lib/auth/middleware.ts'
import { clientIp, enforceRateLimit } from '../lib/auth/rate-limit.ts'
import { verifyAccessTokenClaims } from '../lib/auth/verify.ts'
import { unauthorized } from '../lib/errors.ts'

export const VerifyBody = z.object({ token: z.string().min(1).max(16_384).optional() })

const app = new Hono<AppEnv>().post('/api/v1/auth/verify', async (c) => {
  const { services } = c.var
  try {
    await enforceRateLimit(
      services.bus,
      `verify:${clientIp(c)}`,
      { limit: services.config.NEXUS_VERIFY_RATE_LIMIT, windowSeconds: 60 },
      'verifications',
    )
  } catch (err) {
    // Fails open when the bus is down: verification is not a guessing oracle, and services depend on it.
    if ((err as { status?: number }).status === 429) throw err
    services.log.warn('verify rate limit unavailable; allowing the request', { err })
  }
  // A body is optional: with none, the token is the Bearer header. A body must be JSON (else 415).
  const length = c.req.header('content-length')
  const hasBody = (length !== undefined && length !== '0') || c.req.header('transfer-encoding') !== undefined
  const fromBody = hasBody ? (await jsonBody(c, VerifyBody)).token : undefined
  const token = fromBody ?? bearerToken(c)
  if (!token) throw unauthorized('Send the token as {"token": "..."} or as Authorization: Bearer <token>')
  const claims = await verifyAccessTokenClaims(services, token)
  return c.json({ valid: true, claims }, 200, { 'cache-control': 'no-store' })
})

export default defineFunction('auth-verify', app)
