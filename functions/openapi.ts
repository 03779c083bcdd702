/** GET /openapi.json — the OpenAPI 3.1 description of every route, built from workers.config.ts and the zod schemas. */
import { Hono } from 'hono'
import { defineFunction, type AppEnv } from '../lib/app.ts'

// Built on first request and kept: the description changes only with a deploy. Loaded lazily so that a
// process serving other functions never imports every function module just to start.
let built: Promise<string> | undefined
const specText = () => {
  built ??= import('../lib/openapi.ts').then((m) => JSON.stringify(m.buildOpenApi()))
  built.catch(() => (built = undefined))
  return built
}

const app = new Hono<AppEnv>().get('/openapi.json', async (c) =>
  c.body(await specText(), 200, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'public, max-age=300',
    // Readable by API tools on other origins, like the JWKS.
    'access-control-allow-origin': '*',
  }),
)

export default defineFunction('openapi', app)
