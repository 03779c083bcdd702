/** Users in `users`: lookups, creation, and the public view (never the hash). */
import type { Services } from '../services.ts'
import { conflict } from '../errors.ts'
import { hashPassword } from './passwords.ts'
import type { Role } from './types.ts'

export const USERNAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/

export interface UserRecord {
  id: string
  username: string
  password_hash: string
  roles: Role[]
  disabled: boolean
  created_at: Date
}

/** What the API shows of a user. */
export interface PublicUser {
  id: string
  username: string
  roles: Role[]
  created_at: string
}

export const publicUser = (u: Pick<UserRecord, 'id' | 'username' | 'roles' | 'created_at'>): PublicUser => ({
  id: u.id,
  username: u.username,
  roles: u.roles,
  created_at: new Date(u.created_at).toISOString(),
})

/** The user with this exact username (case-sensitive), hash included, for the login check only. */
export const findUserForLogin = async (services: Services, username: string): Promise<UserRecord | undefined> => {
  if (!USERNAME_PATTERN.test(username)) return undefined
  const { sql, t } = services.db
  const [row] = await sql<UserRecord[]>`
    select id, username, password_hash, roles, disabled, created_at from ${t.users} where username = ${username}`
  return row
}

/** A user's public view by id, or undefined. */
export const getUser = async (services: Services, id: string): Promise<(PublicUser & { disabled: boolean }) | undefined> => {
  const { sql, t } = services.db
  const [row] = await sql<Omit<UserRecord, 'password_hash'>[]>`
    select id, username, roles, disabled, created_at from ${t.users} where id = ${id}::uuid`
  return row && { ...publicUser(row), disabled: row.disabled }
}

/** Creates a user (409 when the username is taken). The password must already have passed the policy. */
export const createUser = async (
  services: Services,
  input: { username: string; password: string; roles: Role[] },
): Promise<PublicUser> => {
  const { sql, t } = services.db
  const [taken] = await sql`select 1 from ${t.users} where username = ${input.username}`
  if (taken) throw conflict(`A user named "${input.username}" already exists`, 'USER_EXISTS')
  const passwordHash = await hashPassword(input.password)
  try {
    const [row] = await sql<Omit<UserRecord, 'password_hash' | 'disabled'>[]>`
      insert into ${t.users} (username, password_hash, roles)
      values (${input.username}, ${passwordHash}, ${sql.array(input.roles)})
      returning id, username, roles, created_at`
    return publicUser(row!)
  } catch (err) {
    // Created by someone else while this request hashed.
    if ((err as { code?: string }).code === '23505') throw conflict(`A user named "${input.username}" already exists`, 'USER_EXISTS')
    throw err
  }
}

/** Records a successful login (best effort). */
export const touchLogin = async (services: Services, id: string): Promise<void> => {
  const { sql, t } = services.db
  await sql`update ${t.users} set last_login_at = now() where id = ${id}`
}
