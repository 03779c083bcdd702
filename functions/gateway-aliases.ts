/** Admin API of model aliases under /api/v1/gateway/aliases: the table in effect, and the rows admins manage. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, type AppContext, type AppEnv } from '../lib/app.ts'
import { requireGatewayAdmin } from '../lib/ai/caller.ts'
import { AliasParams, ModelName, PoolName } from '../lib/ai/models-file.ts'
import { effectiveAliases, invalidateAliases, poolNames } from '../lib/ai/models.ts'
import { ApiError, notFound } from '../lib/errors.ts'

export const AliasBody = z.object({
  target: ModelName,
  params: AliasParams.default({}),
  pool: PoolName.default('default'),
  enabled: z.boolean().default(true),
})
export const CreateAlias = AliasBody.extend({ alias: ModelName })

interface Row {
  alias: string
  target: string
  params: unknown
  pool: string | null
  enabled: boolean
  created_at: Date
  updated_at: Date
}

const view = (r: Row) => ({
  alias: r.alias,
  target: r.target,
  params: r.params,
  pool: r.pool ?? 'default',
  enabled: r.enabled,
  source: 'database' as const,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
})

const aliasParam = (c: AppContext) => {
  const alias = c.req.param('alias') ?? ''
  if (!ModelName.safeParse(alias).success) throw notFound('Alias')
  return alias
}

const checkPool = (c: AppContext, pool: string) => {
  if (!poolNames(c.var.services, c.env).includes(pool))
    throw new ApiError(400, 'VALIDATION_FAILED', `pool: no pool named "${pool}" (pools come from the models file)`, { param: 'pool' })
}

const app = new Hono<AppEnv>()
  .use('/api/v1/gateway/aliases', requireGatewayAdmin())
  .use('/api/v1/gateway/aliases/*', requireGatewayAdmin())
  .get('/api/v1/gateway/aliases', async (c) =>
    c.json({ aliases: await effectiveAliases(c.var.services, c.env), pools: poolNames(c.var.services, c.env) }),
  )
  .post('/api/v1/gateway/aliases', async (c) => {
    const body = await jsonBody(c, CreateAlias)
    checkPool(c, body.pool)
    const { db } = c.var.services
    // A duplicate alias row is a unique violation: 409 through the error renderer.
    const [row] = await db.sql<Row[]>`
      insert into ${db.t.model_aliases} (alias, target, params, pool, enabled)
      values (${body.alias}, ${body.target}, ${db.sql.json(body.params)}, ${body.pool}, ${body.enabled})
      returning *`
    invalidateAliases(c.var.services)
    return c.json(view(row!), 201)
  })
  .put('/api/v1/gateway/aliases/:alias', async (c) => {
    const alias = aliasParam(c)
    const body = await jsonBody(c, AliasBody)
    checkPool(c, body.pool)
    const { db } = c.var.services
    const [row] = await db.sql<(Row & { inserted: boolean })[]>`
      insert into ${db.t.model_aliases} (alias, target, params, pool, enabled)
      values (${alias}, ${body.target}, ${db.sql.json(body.params)}, ${body.pool}, ${body.enabled})
      on conflict (alias) do update set target = excluded.target, params = excluded.params, pool = excluded.pool,
        enabled = excluded.enabled, updated_at = now()
      returning *, (xmax = 0) as inserted`
    invalidateAliases(c.var.services)
    return c.json(view(row!), row!.inserted ? 201 : 200)
  })
  .delete('/api/v1/gateway/aliases/:alias', async (c) => {
    const alias = aliasParam(c)
    const { db } = c.var.services
    const rows = await db.sql`delete from ${db.t.model_aliases} where alias = ${alias} returning alias`
    if (rows.length === 0) throw notFound('Alias row')
    invalidateAliases(c.var.services)
    return c.body(null, 204)
  })

export default defineFunction('gateway-aliases', app)
