/** The signed-in session: the access token, kept in sessionStorage for this tab only, and what it says about its user. */

const KEY = 'nexus.token'
let memory: string | undefined // when sessionStorage is unavailable (some private modes)

export interface SessionUser {
  sub: string
  username: string
  roles: string[]
  /** Expiry, in seconds since the epoch. */
  exp: number
}

/** Reads the claims for display and timers only; the server verifies the token on every call. */
export const claimsOf = (token: string): SessionUser | undefined => {
  const part = token.split('.')[1]
  if (!part) return undefined
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='))
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0))
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
    if (typeof claims.exp !== 'number' || typeof claims.sub !== 'string') return undefined
    return {
      sub: claims.sub,
      username: typeof claims.username === 'string' ? claims.username : claims.sub,
      roles: Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [],
      exp: claims.exp,
    }
  } catch {
    return undefined
  }
}

export const loadToken = (): string | undefined => {
  try {
    return sessionStorage.getItem(KEY) ?? undefined
  } catch {
    return memory
  }
}

export const saveToken = (token: string) => {
  memory = token
  try {
    sessionStorage.setItem(KEY, token)
  } catch {
    // memory only
  }
}

export const clearToken = () => {
  memory = undefined
  try {
    sessionStorage.removeItem(KEY)
  } catch {
    // nothing stored
  }
}

/** The roles that may act as `role` (admin may act as any), as the server decides. */
export const can = (user: SessionUser | undefined, role: 'admin' | 'operator' | 'agent' | 'viewer') =>
  Boolean(user && (user.roles.includes('admin') || user.roles.includes(role)))
