/** POST /api/v1/auth/login — exchange a username and password for an RS256 access token. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, type AppContext, type AppEnv } from '../lib/app.ts'
import {
  assertClientNotLocked,
  assertUserNotLocked,
  enforceLoginRateLimit,
  recordLoginFailure,
  recordLoginSuccess,
} from '../lib/auth/login-guard.ts'
import { passwordTooLong, verifyPassword } from '../lib/auth/passwords.ts'
import { clientIp } from '../lib/auth/rate-limit.ts'
import { issueAccessToken } from '../lib/auth/tokens.ts'
import { findUserForLogin, touchLogin } from '../lib/auth/users.ts'
import { ApiError } from '../lib/errors.ts'

export const LoginBody = z.object({
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
})

const wrongCredentials = () => new ApiError(401, 'INVALID_CREDENTIALS', 'Invalid username or password')

type LoginResult = 'success' | 'invalid_credentials' | 'locked' | 'rate_limited' | 'bad_request' | 'error'

const resultOf = (err: unknown): LoginResult => {
  if (!(err instanceof ApiError)) return 'error'
  if (err.code === 'INVALID_CREDENTIALS') return 'invalid_credentials'
  if (err.code === 'LOGIN_LOCKED') return 'locked'
  if (err.code === 'RATE_LIMITED') return 'rate_limited'
  return err.status < 500 ? 'bad_request' : 'error'
}

const app = new Hono<AppEnv>().post('/api/v1/auth/login', async (c) => {
  const logins = c.var.services.metrics.counter('nexus_auth_logins_total', 'Login attempts, by result.')
  try {
    const res = await login(c)
    logins.inc({ result: 'success' })
    return res
  } catch (err) {
    // Brute force shows up here as a climbing invalid_credentials and locked count.
    logins.inc({ result: resultOf(err) })
    throw err
  }
})

const login = async (c: AppContext) => {
  const { services } = c.var
  const { log } = services
  const client = clientIp(c)
  // Both before the body is read: malformed requests spend the same budget, and a locked client gets nothing.
  await enforceLoginRateLimit(services, client)
  await assertClientNotLocked(services, client)
  const { username, password } = await jsonBody(c, LoginBody)
  // No stored password is longer (bcrypt would truncate it), so this says nothing about the user.
  if (passwordTooLong(password))
    throw new ApiError(400, 'VALIDATION_FAILED', 'password: must be at most 72 bytes in UTF-8', { param: 'password' })
  const attempt = { username, client }
  await assertUserNotLocked(services, attempt)

  const user = await findUserForLogin(services, username)
  // Unknown and disabled users still cost one full bcrypt check: the answer's timing is the same.
  const ok = await verifyPassword(password, user && !user.disabled ? user.password_hash : undefined)
  if (!ok || !user || user.disabled) {
    await recordLoginFailure(services, attempt)
    // An unknown "username" is not logged: it is often a password typed into the wrong field.
    if (user) log.info('login failed', { username, client, reason: user.disabled ? 'disabled' : 'wrong password' })
    else log.info('login failed', { client, reason: 'unknown user' })
    throw wrongCredentials()
  }
  await recordLoginSuccess(services, attempt)
  const issued = await issueAccessToken(services, user, { clientIp: client, userAgent: c.req.header('user-agent') })
  await touchLogin(services, user.id)
  log.info('login', { username, sub: user.id, jti: issued.jti, kid: issued.kid, client })
  return c.json(
    { access_token: issued.token, token_type: 'Bearer', expires_in: issued.expiresIn },
    200,
    // RFC 6749 §5.1: responses carrying tokens are never cached.
    { 'cache-control': 'no-store', pragma: 'no-cache' },
  )
}

export default defineFunction('auth-login', app)
