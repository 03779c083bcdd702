/**
 * The shared auth middleware every protected function uses: `requireAuth()` verifies the Bearer access
 * token and sets `c.var.user`; `requireRole(...roles)` also requires one of the roles (admin always passes).
 */
import type { Context, MiddlewareHandler } from 'hono'
import type { AppEnv } from '../app.ts'
import { forbidden, unauthorized } from '../errors.ts'
import type { AuthUser, Role } from './types.ts'
import { verifyAccessToken } from './verify.ts'

export type { AuthUser, Role } from './types.ts'
export { ROLES } from './types.ts'
export { verifyAccessToken } from './verify.ts'

export interface RequireAuthOptions {
  /**
   * Also accept `?token=` in the query, for browser clients of SSE and WebSocket that cannot set headers.
   * Off by default: tokens in URLs end up in logs and histories.
   */
  allowQueryToken?: boolean
}

// RFC 6750 §2.1: the scheme is case-insensitive, then one space and a token68.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i

const tokenFrom = (header: string | undefined, c: Context, options: RequireAuthOptions): string | undefined => {
  if (header !== undefined) return BEARER.exec(header)?.[1]
  if (options.allowQueryToken) return c.req.query('token') || undefined
  return undefined
}

/** The Bearer token of a request, or undefined when it has none. */
export const bearerToken = (c: Context, options: RequireAuthOptions = {}): string | undefined =>
  tokenFrom(c.req.header('authorization'), c, options)

const authenticate = async (c: Context<AppEnv>, options: RequireAuthOptions): Promise<AuthUser> => {
  const existing = c.get('user')
  if (existing) return existing
  const header = c.req.header('authorization')
  const token = tokenFrom(header, c, options)
  if (!token)
    throw header !== undefined || (options.allowQueryToken && c.req.query('token') !== undefined)
      ? unauthorized('The Authorization header must be "Bearer <access token>"', 'TOKEN_INVALID')
      : unauthorized('Authentication required: send Authorization: Bearer <access token>')
  const user = await verifyAccessToken(c.var.services, token)
  c.set('user', user)
  return user
}

/** Requires a valid access token: 401 in the envelope without one or with a bad one; sets `c.var.user`. */
export const requireAuth = (options: RequireAuthOptions = {}): MiddlewareHandler<AppEnv> =>
  async function requireAuth(c, next) {
    await authenticate(c, options)
    await next()
  }

/** True when the user may act as one of `roles` (admin may act as any). */
export const hasRole = (user: Pick<AuthUser, 'roles'>, roles: readonly Role[]): boolean =>
  user.roles.includes('admin') || roles.some((r) => user.roles.includes(r))

/** Requires a valid access token (as requireAuth) and one of the roles: 403 `FORBIDDEN` otherwise. */
export const requireRole = (...roles: Role[]): MiddlewareHandler<AppEnv> => {
  if (roles.length === 0) throw new Error('requireRole needs at least one role')
  const message = `This needs the ${roles.map((r) => `"${r}"`).join(' or ')} role`
  return async function requireRole(c, next) {
    const user = await authenticate(c, {})
    if (!hasRole(user, roles)) throw forbidden(message)
    await next()
  }
}

/** The authenticated user of a request behind requireAuth/requireRole (401 if there is none). */
export const authUser = (c: Context<AppEnv>): AuthUser => {
  const user = c.get('user')
  if (!user) throw unauthorized()
  return user
}
