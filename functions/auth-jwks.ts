/** GET /.well-known/jwks.json and /api/v1/auth/.well-known/jwks.json — the public signing keys (RFC 7517). */
import { Hono } from 'hono'
import { defineFunction, type AppContext, type AppEnv } from '../lib/app.ts'
import { JWKS_MAX_AGE_SECONDS, publicKeys } from '../lib/auth/keys.ts'

const jwks = async (c: AppContext) => {
  const keys = await publicKeys(c.var.services)
  return c.json({ keys }, 200, {
    // One constant: the rotation window counts on caches holding the set no longer than this.
    'cache-control': `public, max-age=${JWKS_MAX_AGE_SECONDS}`,
    'access-control-allow-origin': '*',
  })
}

const app = new Hono<AppEnv>().get('/.well-known/jwks.json', jwks).get('/api/v1/auth/.well-known/jwks.json', jwks)

export default defineFunction('auth-jwks', app)
