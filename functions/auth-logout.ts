/** POST /api/v1/auth/logout — revoke the Bearer token, everywhere, until it would have expired. */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth } from '../lib/auth/middleware.ts'
import { revokeToken } from '../lib/auth/revocation.ts'

const app = new Hono<AppEnv>().post('/api/v1/auth/logout', requireAuth(), async (c) => {
  const user = authUser(c)
  await revokeToken(c.var.services, user.jti, user.exp)
  c.var.services.log.info('logout', { username: user.username, jti: user.jti })
  return c.body(null, 204)
})

export default defineFunction('auth-logout', app)
