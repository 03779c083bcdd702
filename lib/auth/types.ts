/** The shapes of NEXUS identity: roles, the verified user a request carries, and access-token claims. */

/** Every role, most powerful first. `admin` passes every role check. */
export const ROLES = ['admin', 'operator', 'agent', 'viewer'] as const
export type Role = (typeof ROLES)[number]

export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value)

/** Who a verified access token speaks for; set as `c.var.user` by requireAuth. */
export interface AuthUser {
  /** The user's id (`users.id`), the token's `sub`. */
  sub: string
  username: string
  roles: Role[]
  /** The token's id, the key of its session row and of its revocation. */
  jti: string
  /** Expiry, seconds since the epoch. */
  exp: number
  kind: 'user'
}

/** The claims of a NEXUS access token (RFC 9068-style, header `typ: at+jwt`). */
export interface AccessTokenClaims {
  iss: string
  aud: string
  sub: string
  username: string
  roles: Role[]
  jti: string
  iat: number
  exp: number
}
