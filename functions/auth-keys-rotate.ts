/** POST /api/v1/auth/keys/rotate (admin) — the next key starts signing; older keys keep verifying their tokens. */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'
import { rotateSigningKeys } from '../lib/auth/keys.ts'
import { authUser, requireRole } from '../lib/auth/middleware.ts'

const app = new Hono<AppEnv>().post('/api/v1/auth/keys/rotate', requireRole('admin'), async (c) => {
  const { services } = c.var
  const { kid, previous } = await rotateSigningKeys(services)
  services.log.info('signing key rotated', { kid, previous, by: authUser(c).username })
  return c.json({ kid }, 201, { 'cache-control': 'no-store' })
})

export default defineFunction('auth-keys-rotate', app)
