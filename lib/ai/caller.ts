/**
 * Who is calling the gateway: `Authorization: Bearer` with the master key (compared in constant time),
 * a gateway key (`nx-...`), or an access token from /api/v1/auth (a JWT). Also the admin guard of the
 * gateway's admin API, which the master key passes too.
 */
import type { Context, MiddlewareHandler } from 'hono'
import type { AppEnv } from '../app.ts'
import { verifyAccessToken, type AuthUser } from '../auth/middleware.ts'
import { ApiError, forbidden } from '../errors.ts'
import type { Services } from '../services.ts'
import { KEY_PREFIX, findKey, timingSafeEqualStrings, type GatewayKey } from './keys.ts'

export type Caller =
  | { kind: 'master'; subject: 'master' }
  | { kind: 'key'; subject: string; key: GatewayKey }
  | { kind: 'user'; subject: string; user: AuthUser }

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

const invalidKey = (message: string) =>
  new ApiError(401, 'invalid_api_key', message, { headers: { 'www-authenticate': 'Bearer' } })

const bearerOf = (c: Context<AppEnv>): string => {
  const header = c.req.header('authorization')
  if (!header)
    throw invalidKey(
      "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>' (the master key, a gateway key or an access token).",
    )
  const token = BEARER.exec(header)?.[1]
  if (!token) throw invalidKey('The Authorization header must be "Bearer <key>"')
  return token
}

const asMaster = (services: Services, token: string): boolean => {
  const master = services.config.NEXUS_MASTER_KEY
  return master !== undefined && timingSafeEqualStrings(token, master)
}

/**
 * Identifies the caller of a gateway route. Every failure is 401 `invalid_api_key` (OpenAI's code, which
 * its SDKs raise as AuthenticationError), with a message that says what was wrong, never the key.
 */
export const authenticateCaller = async (c: Context<AppEnv>): Promise<Caller> => {
  const services = c.var.services
  const token = bearerOf(c)
  if (token.startsWith(KEY_PREFIX)) {
    const key = await findKey(services, token)
    if (!key) throw invalidKey('Incorrect API key provided.')
    if (key.revoked_at) throw invalidKey('This API key has been revoked.')
    if (key.expires_at && Date.parse(key.expires_at) <= Date.now()) throw invalidKey('This API key has expired.')
    return { kind: 'key', subject: `key:${key.key_prefix}`, key }
  }
  if (JWT_SHAPE.test(token)) {
    try {
      const user = await verifyAccessToken(services, token)
      return { kind: 'user', subject: `user:${user.username}`, user }
    } catch (err) {
      // A bad access token is a bad key here; a 5xx (no key set loaded) stays what it is.
      if (err instanceof ApiError && err.status === 401) throw invalidKey(err.message)
      throw err
    }
  }
  if (asMaster(services, token)) return { kind: 'master', subject: 'master' }
  throw invalidKey('Incorrect API key provided.')
}

/** Whether a key may use a model (by the name the client asked for). OpenAI answers 403 here. */
export const assertModelAllowed = (caller: Caller, model: string): void => {
  if (caller.kind !== 'key' || caller.key.allowed_models === null) return
  if (!caller.key.allowed_models.includes(model))
    throw new ApiError(403, 'MODEL_NOT_ALLOWED', `This API key is not allowed to use the model \`${model}\`.`, { param: 'model' })
}

const admins = new WeakMap<Request, Caller>()

/**
 * Guards the gateway's admin API: the master key, or an access token of a user with the `admin` role.
 * 401 without valid credentials, 403 for a user who is not an admin (or a gateway key).
 */
export const requireGatewayAdmin = (): MiddlewareHandler<AppEnv> =>
  async function requireGatewayAdmin(c, next) {
    const services = c.var.services
    const header = c.req.header('authorization')
    const token = header ? BEARER.exec(header)?.[1] : undefined
    if (!token)
      throw new ApiError(401, header ? 'TOKEN_INVALID' : 'UNAUTHORIZED', 'Authentication required: send Authorization: Bearer <access token or master key>', {
        headers: { 'www-authenticate': 'Bearer' },
      })
    let caller: Caller
    if (token.startsWith(KEY_PREFIX)) throw forbidden('Gateway keys cannot use the admin API')
    if (JWT_SHAPE.test(token)) {
      const user = await verifyAccessToken(services, token)
      if (!user.roles.includes('admin')) throw forbidden('This needs the "admin" role')
      c.set('user', user)
      caller = { kind: 'user', subject: `user:${user.username}`, user }
    } else if (asMaster(services, token)) caller = { kind: 'master', subject: 'master' }
    else
      throw new ApiError(401, 'TOKEN_INVALID', 'The bearer value is neither a valid access token nor the master key', {
        headers: { 'www-authenticate': 'Bearer' },
      })
    admins.set(c.req.raw, caller)
    await next()
  }

/** The admin caller behind requireGatewayAdmin. */
export const adminCaller = (c: Context<AppEnv>): Caller => {
  const caller = admins.get(c.req.raw)
  if (!caller) throw new ApiError(401, 'UNAUTHORIZED', 'Authentication required')
  return caller
}
