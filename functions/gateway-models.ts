/** GET /v1/models (and /models, /v1/models/:model): every alias and every model the Ollama pool has. */
import { Hono } from 'hono'
import { defineFunction, type AppContext, type AppEnv } from '../lib/app.ts'
import { authenticateCaller, type Caller } from '../lib/ai/caller.ts'
import { effectiveAliases, modelNotFound } from '../lib/ai/models.ts'
import { localModels } from '../lib/ai/tags.ts'

interface ModelObject {
  id: string
  object: 'model'
  created: number
  owned_by: string
}

const visibleTo = (caller: Caller) => (id: string) =>
  caller.kind !== 'key' || caller.key.allowed_models === null || caller.key.allowed_models.includes(id)

/** Aliases first (owned by nexus), then local models (owned by ollama); a name is listed once. */
const listModels = async (c: AppContext): Promise<ModelObject[]> => {
  const caller = await authenticateCaller(c)
  const { services } = c.var
  // Ollama down (no host answers, nothing cached) is a 503 that says so, as for every gateway route.
  const [aliases, local] = await Promise.all([effectiveAliases(services, c.env), localModels(services)])
  const seen = new Set<string>()
  const out: ModelObject[] = []
  for (const a of aliases) {
    if (!a.enabled || seen.has(a.alias)) continue
    seen.add(a.alias)
    out.push({ id: a.alias, object: 'model', created: a.created_at ? Math.floor(Date.parse(a.created_at) / 1000) : 0, owned_by: 'nexus' })
  }
  for (const m of local) {
    if (seen.has(m.name)) continue
    seen.add(m.name)
    out.push({ id: m.name, object: 'model', created: m.modified, owned_by: 'ollama' })
  }
  return out.filter((m) => visibleTo(caller)(m.id))
}

const list = async (c: AppContext) => c.json({ object: 'list', data: await listModels(c) })

const app = new Hono<AppEnv>()
  .get('/v1/models', list)
  .get('/models', list)
  .get('/v1/models/:model', async (c) => {
    const id = c.req.param('model')
    const found = (await listModels(c)).find((m) => m.id === id)
    if (!found) throw modelNotFound(id)
    return c.json(found)
  })

export default defineFunction('gateway-models', app)
