/** Admin API of gateway keys under /api/v1/gateway/keys: create (the key is shown once), list, read, change, revoke. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, parseWith, type AppContext, type AppEnv } from '../lib/app.ts'
import { adminCaller, requireGatewayAdmin } from '../lib/ai/caller.ts'
import { createKey, getKey, keysChanged, listKeys, revokeKey, updateKey } from '../lib/ai/keys.ts'
import { ModelName } from '../lib/ai/models-file.ts'
import { notFound } from '../lib/errors.ts'

const Limit = z.number().int().min(1).max(1_000_000_000).nullable()
const Limits = {
  allowed_models: z.array(ModelName).max(1000).nullable(),
  rpm_limit: Limit,
  tpm_limit: Limit,
  budget_tokens: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).nullable(),
  expires_at: z.iso.datetime({ offset: true }).nullable(),
}

export const CreateKey = z.object({
  name: z.string().trim().min(1).max(128),
  ...Object.fromEntries(Object.entries(Limits).map(([k, v]) => [k, v.optional()])),
  /** Alternative to expires_at: lifetime in seconds. */
  expires_in: z.number().int().min(60).max(10 * 365 * 86400).optional(),
}) as z.ZodType<{
  name: string
  allowed_models?: string[] | null
  rpm_limit?: number | null
  tpm_limit?: number | null
  budget_tokens?: number | null
  expires_at?: string | null
  expires_in?: number
}>

export const PatchKey = z
  .object({ name: z.string().trim().min(1).max(128), ...Limits })
  .partial()
  .refine((v) => Object.keys(v).length > 0, 'give at least one field to change')

const Id = z.object({ id: z.uuid('must be a key id (a UUID)') })
export const ListQuery = z.object({ include_revoked: z.enum(['true', 'false']).default('true') })

const keyId = (c: AppContext) => {
  const parsed = Id.safeParse({ id: c.req.param('id') })
  // A malformed id names no key: 404, as for an unknown one.
  if (!parsed.success) throw notFound('Gateway key')
  return parsed.data.id
}

const expiry = (at: string | null | undefined, inSeconds: number | undefined): Date | null | undefined =>
  inSeconds !== undefined ? new Date(Date.now() + inSeconds * 1000) : at ? new Date(at) : (at as null | undefined)

const app = new Hono<AppEnv>()
  .use('/api/v1/gateway/keys', requireGatewayAdmin())
  .use('/api/v1/gateway/keys/*', requireGatewayAdmin())
  .post('/api/v1/gateway/keys', async (c) => {
    const body = await jsonBody(c, CreateKey)
    const caller = adminCaller(c)
    const { key, secret } = await createKey(
      c.var.services.db,
      { ...body, expires_at: expiry(body.expires_at, body.expires_in) },
      caller.kind === 'user' ? caller.user.sub : null,
    )
    c.var.services.log.info('gateway key created', { keyId: key.id, by: caller.subject })
    // The only time the key is shown: only its hash is kept.
    return c.json({ ...key, key: secret }, 201, { 'cache-control': 'no-store' })
  })
  .get('/api/v1/gateway/keys', async (c) => {
    const q = parseWith(ListQuery, c.req.query())
    return c.json({ keys: await listKeys(c.var.services.db, q.include_revoked === 'true') })
  })
  .get('/api/v1/gateway/keys/:id', async (c) => {
    const key = await getKey(c.var.services.db, keyId(c))
    if (!key) throw notFound('Gateway key')
    return c.json(key)
  })
  .patch('/api/v1/gateway/keys/:id', async (c) => {
    const id = keyId(c)
    const patch = await jsonBody(c, PatchKey)
    const key = await updateKey(c.var.services.db, id, {
      ...patch,
      expires_at: patch.expires_at === undefined ? undefined : expiry(patch.expires_at, undefined),
    })
    if (!key) throw notFound('Gateway key')
    await keysChanged(c.var.services)
    return c.json(key)
  })
  .delete('/api/v1/gateway/keys/:id', async (c) => {
    const key = await revokeKey(c.var.services.db, keyId(c))
    if (!key) throw notFound('Gateway key')
    // Every process and isolate sees it on its next lookup (docs/GATEWAY.md).
    await keysChanged(c.var.services)
    c.var.services.log.info('gateway key revoked', { keyId: key.id, by: adminCaller(c).subject })
    return c.json(key)
  })

export default defineFunction('gateway-keys', app)
