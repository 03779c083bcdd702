/** Issues RS256 access tokens and records each as a session row (the handle for revocation). */
import { SignJWT } from 'jose'
import type { Services } from '../services.ts'
import { activeSigningKey } from './keys.ts'
import type { Role } from './types.ts'
import { ACCESS_TOKEN_TYPE } from './verify.ts'

export interface IssuedToken {
  token: string
  jti: string
  kid: string
  /** Seconds since the epoch. */
  exp: number
  expiresIn: number
}

export interface SessionMeta {
  clientIp?: string
  userAgent?: string
}

/**
 * Signs an access token for a user with the active key: header `alg: RS256`, `kid`, `typ: at+jwt`;
 * claims `iss`, `aud`, `sub`, `username`, `roles`, `jti`, `iat`, `exp` = `iat` + NEXUS_TOKEN_TTL.
 * The session row is written before the token is returned, so every token can be revoked by jti.
 */
export const issueAccessToken = async (
  services: Services,
  user: { id: string; username: string; roles: Role[] },
  meta: SessionMeta = {},
): Promise<IssuedToken> => {
  const { config, db } = services
  const { kid, key } = await activeSigningKey(services)
  const iat = Math.floor(Date.now() / 1000)
  const expiresIn = config.NEXUS_TOKEN_TTL
  const exp = iat + expiresIn
  const jti = crypto.randomUUID()
  const token = await new SignJWT({ username: user.username, roles: user.roles })
    .setProtectedHeader({ alg: 'RS256', kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(config.NEXUS_JWT_ISSUER)
    .setAudience(config.NEXUS_JWT_AUDIENCE)
    .setSubject(user.id)
    .setJti(jti)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key)
  await db.sql`insert into ${db.t.human_sessions} (jti, user_id, kid, issued_at, expires_at, client_ip, user_agent)
               values (${jti}, ${user.id}, ${kid}, to_timestamp(${iat}), to_timestamp(${exp}),
                       ${meta.clientIp ?? null}, ${meta.userAgent?.slice(0, 256) ?? null})`
  return { token, jti, kid, exp, expiresIn }
}
