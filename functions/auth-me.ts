/** GET /api/v1/auth/me — the authenticated user (id, username, roles, created_at; never the hash). */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth } from '../lib/auth/middleware.ts'
import { getUser } from '../lib/auth/users.ts'
import { unauthorized } from '../lib/errors.ts'

const app = new Hono<AppEnv>().get('/api/v1/auth/me', requireAuth(), async (c) => {
  const token = authUser(c)
  const user = await getUser(c.var.services, token.sub)
  if (!user || user.disabled) throw unauthorized('The user of this token no longer exists or is disabled', 'TOKEN_INVALID')
  const { disabled: _disabled, ...visible } = user
  return c.json({ ...visible, token: { jti: token.jti, exp: token.exp } }, 200, { 'cache-control': 'no-store' })
})

export default defineFunction('auth-me', app)
