/** POST /api/v1/auth/users (admin) — create a user with a bcrypt-hashed password and roles. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, type AppEnv } from '../lib/app.ts'
import { authUser, requireRole } from '../lib/auth/middleware.ts'
import { assertPasswordPolicy } from '../lib/auth/passwords.ts'
import { ROLES } from '../lib/auth/types.ts'
import { createUser, USERNAME_PATTERN } from '../lib/auth/users.ts'

export const CreateUser = z.object({
  username: z.string().regex(USERNAME_PATTERN, 'must be 1-64 of A-Z a-z 0-9 _ . @ -'),
  password: z.string().max(1024),
  roles: z
    .array(z.enum(ROLES))
    .min(1)
    .max(ROLES.length)
    .refine((r) => new Set(r).size === r.length, 'must not repeat a role')
    .default(['viewer']),
})

const app = new Hono<AppEnv>().post('/api/v1/auth/users', requireRole('admin'), async (c) => {
  const body = await jsonBody(c, CreateUser)
  assertPasswordPolicy(body.password)
  const user = await createUser(c.var.services, body)
  c.var.services.log.info('user created', { username: user.username, roles: user.roles, by: authUser(c).username })
  return c.json(user, 201, { location: `/api/v1/auth/users/${user.id}` })
})

export default defineFunction('auth-users-create', app)
