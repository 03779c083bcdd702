/**
 * The OpenAPI 3.1 description of NEXUS, built from workers.config.ts (every route, its function, group
 * and description) and the very zod schemas the functions validate with (converted with z.toJSONSchema).
 * Served at GET /openapi.json and rendered into docs/API_REFERENCE.md; test/deploy/openapi.test.ts
 * checks each schema here against the function source, so the description cannot drift from the code.
 */
import * as z from 'zod'
import { functions, type FunctionSpec, type Method } from '../workers.config.ts'
import pkg from '../package.json' with { type: 'json' }
import * as aiEmbeddings from './ai/embeddings.ts'
import * as aiOpenai from './ai/openai.ts'
import * as cortexAgentsLib from './cortex/agents.ts'
import * as cortexCommandsLib from './cortex/commands.ts'
import * as cortexRouting from './cortex/routing.ts'
import * as authLogin from '../functions/auth-login.ts'
import * as authUsersCreate from '../functions/auth-users-create.ts'
import * as authVerify from '../functions/auth-verify.ts'
import * as cortexAgentState from '../functions/cortex-agent-state.ts'
import * as cortexAgents from '../functions/cortex-agents.ts'
import * as cortexCommandLifecycle from '../functions/cortex-command-lifecycle.ts'
import * as cortexCommands from '../functions/cortex-commands.ts'
import * as cortexEvents from '../functions/cortex-events.ts'
import * as cortexEventsLive from '../functions/cortex-events-live.ts'
import * as cortexRoutingRules from '../functions/cortex-routing-rules.ts'
import * as gatewayAliases from '../functions/gateway-aliases.ts'
import * as gatewayKeys from '../functions/gateway-keys.ts'
import * as gatewayUsage from '../functions/gateway-usage.ts'

/** What the description says about one route beyond workers.config.ts. */
export interface RouteDoc {
  /** The JSON body schema the handler validates with (`jsonBody(c, X)`). */
  body?: z.ZodType
  /** The query schema (`parseWith(X, c.req.query())`). */
  query?: z.ZodType
  /** The path-parameter schema (`parseWith(X, c.req.param())`). */
  params?: z.ZodType
  /** Success statuses (default [200]). */
  ok?: number[]
  /** The success answer is an event stream (SSE), always or with `stream: true`. */
  sse?: 'always' | 'optional'
  /** A WebSocket upgrade. */
  websocket?: true
  /** Short per-route summary; the function's description otherwise. */
  summary?: string
}

/**
 * Per route (`METHOD path` as in workers.config.ts). Each schema is imported from where its function
 * imports it; the test reads the function files and checks both sides name the same object.
 */
export const routeDocs: Record<string, RouteDoc> = {
  'POST /api/v1/auth/login': { body: authLogin.LoginBody, summary: 'Log in: username and password -> access token' },
  'POST /api/v1/auth/verify': { body: authVerify.VerifyBody, summary: 'Verify an access token (body or Bearer)' },
  'POST /api/v1/auth/keys/rotate': { ok: [201], summary: 'Rotate the signing key (admin)' },
  'POST /api/v1/auth/logout': { ok: [204], summary: 'Revoke the Bearer token' },
  'POST /api/v1/auth/users': { body: authUsersCreate.CreateUser, ok: [201], summary: 'Create a user (admin)' },
  'GET /.well-known/jwks.json': { summary: 'The public signing keys (RFC 7517 JWKS)' },
  'GET /api/v1/auth/.well-known/jwks.json': { summary: 'The public signing keys (same as /.well-known/jwks.json)' },
  'GET /api/v1/auth/me': { summary: 'The authenticated user' },
  'GET /api/v1/auth/health': { ok: [200, 503], summary: "The auth service's checks" },
  'POST /v1/chat/completions': { body: aiOpenai.ChatCompletionRequest, sse: 'optional', summary: 'Chat completion (OpenAI-compatible)' },
  'POST /chat/completions': { body: aiOpenai.ChatCompletionRequest, sse: 'optional', summary: 'Chat completion (alias path)' },
  'POST /v1/embeddings': { body: aiEmbeddings.EmbeddingsRequest, summary: 'Embeddings (OpenAI-compatible)' },
  'POST /embeddings': { body: aiEmbeddings.EmbeddingsRequest, summary: 'Embeddings (alias path)' },
  'GET /v1/models': { summary: 'List models: aliases and local Ollama models' },
  'GET /models': { summary: 'List models (alias path)' },
  'GET /v1/models/{model}': { summary: 'One model' },
  'POST /api/v1/gateway/keys': { body: gatewayKeys.CreateKey, ok: [201], summary: 'Create a gateway key (shown once)' },
  'GET /api/v1/gateway/keys': { query: gatewayKeys.ListQuery, summary: 'List gateway keys' },
  'GET /api/v1/gateway/keys/{id}': { summary: 'One gateway key' },
  'PATCH /api/v1/gateway/keys/{id}': { body: gatewayKeys.PatchKey, summary: 'Change a gateway key' },
  'DELETE /api/v1/gateway/keys/{id}': { summary: 'Revoke a gateway key' },
  'GET /api/v1/gateway/aliases': { summary: 'Aliases in effect, and the pools' },
  'POST /api/v1/gateway/aliases': { body: gatewayAliases.CreateAlias, ok: [201], summary: 'Add an alias' },
  'PUT /api/v1/gateway/aliases/{alias}': { body: gatewayAliases.AliasBody, ok: [200, 201], summary: 'Create or replace an alias' },
  'DELETE /api/v1/gateway/aliases/{alias}': { ok: [204], summary: 'Delete an alias row' },
  'GET /api/v1/gateway/usage': { query: gatewayUsage.Query, summary: 'The usage log, as rows or buckets' },
  'POST /api/v1/agents/register': { body: cortexAgentsLib.RegisterBody, ok: [200, 201], summary: 'Register an agent (200 when known)' },
  'GET /api/v1/agents': { query: cortexAgents.ListQuery, summary: 'List agents with online/offline' },
  'GET /api/v1/agents/{agent_id}': { params: cortexAgents.Params, summary: 'One agent' },
  'POST /api/v1/agents/{agent_id}/heartbeat': { params: cortexAgents.Params, summary: 'Heartbeat' },
  'GET /api/v1/agents/{agent_id}/state': { params: cortexAgentState.AgentParams, summary: "An agent's whole state" },
  'GET /api/v1/agents/{agent_id}/state/{key}': { params: cortexAgentState.KeyParams, summary: 'One state key' },
  'PUT /api/v1/agents/{agent_id}/state/{key}': { params: cortexAgentState.KeyParams, body: cortexAgentState.PutBody, summary: 'Set one state key' },
  'DELETE /api/v1/agents/{agent_id}/state/{key}': { params: cortexAgentState.KeyParams, ok: [204], summary: 'Delete one state key' },
  'POST /api/v1/commands': { body: cortexCommandsLib.CreateBody, ok: [201], summary: 'Queue a command (routed when no agent_id)' },
  'GET /api/v1/commands': { query: cortexCommands.ListQuery, summary: 'List commands' },
  'GET /api/v1/commands/{id}': { params: cortexCommands.Params, summary: 'One command' },
  'POST /api/v1/commands/{id}/retry': { params: cortexCommands.Params, summary: 'Queue a failed command again (operator)' },
  'POST /api/v1/agents/{agent_id}/commands/claim': {
    params: cortexCommandLifecycle.ClaimParams,
    query: cortexCommandLifecycle.ClaimQuery,
    ok: [200, 204],
    summary: 'Claim the next command under a lease (long-poll with ?wait=)',
  },
  'POST /api/v1/commands/{id}/complete': { params: cortexCommandLifecycle.Params, body: cortexCommandsLib.CompleteBody, summary: 'Complete a command' },
  'POST /api/v1/commands/{id}/fail': { params: cortexCommandLifecycle.Params, body: cortexCommandsLib.FailBody, summary: 'Fail a command (or retry it)' },
  'GET /api/v1/routing-rules': { summary: 'List routing rules (admin)' },
  'POST /api/v1/routing-rules': { body: cortexRouting.RuleBody, ok: [201], summary: 'Add a routing rule (admin)' },
  'PUT /api/v1/routing-rules/{id}': { params: cortexRoutingRules.Params, body: cortexRouting.RuleBody, summary: 'Replace a routing rule (admin)' },
  'DELETE /api/v1/routing-rules/{id}': { params: cortexRoutingRules.Params, ok: [204], summary: 'Delete a routing rule (admin)' },
  'POST /api/v1/events': { body: cortexEvents.PostBody, ok: [201], summary: 'Post an event' },
  'GET /api/v1/events': { query: cortexEvents.ListQuery, summary: 'Read the event log' },
  'GET /api/v1/events/ws': { query: cortexEventsLive.LiveQuery, websocket: true, summary: 'Live events over WebSocket' },
  'GET /api/v1/events/stream': { query: cortexEventsLive.LiveQuery, sse: 'always', summary: 'Live events over SSE' },
  'GET /health': { ok: [200, 503], summary: 'Checks of the database, bus and Ollama' },
  'GET /health/live': { summary: 'Liveness' },
  'GET /health/ready': { summary: 'Readiness (503 while draining or without a database)' },
  'GET /metrics': { summary: 'Prometheus metrics (text format 0.0.4)' },
  'GET /openapi.json': { summary: 'This description' },
  'GET /': { summary: 'The dashboard (HTML)' },
  'GET /assets/{file}': { summary: 'Dashboard assets' },
}

/** Functions whose Bearer token is optional (the token may come in the body instead). */
const OPTIONAL_AUTH = new Set(['auth-verify'])

/** `/a/:b/c` -> `/a/{b}/c`. */
export const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
export const routeKey = (method: Method | string, path: string) => `${method} ${openApiPath(path)}`

/** Whether a function verifies tokens (its `jwks` binding), i.e. its routes need a Bearer token. */
export const requiresBearer = (fn: FunctionSpec) => fn.bindings.includes('jwks') && !OPTIONAL_AUTH.has(fn.name)

type JsonSchema = Record<string, unknown>

const toSchema = (schema: z.ZodType): JsonSchema => {
  // Input side: what a client sends (before defaults and transforms); custom checks become `{}`.
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema
  return rest
}

// The schemas' names: the export names in the modules imported above (first module wins; a name that
// two different schemas share is qualified with its module).
const modules: Record<string, Record<string, unknown>> = {
  authLogin, authUsersCreate, authVerify, aiOpenai, aiEmbeddings, gatewayKeys, gatewayAliases, gatewayUsage,
  cortexAgentsLib, cortexAgents, cortexAgentState, cortexCommandsLib, cortexCommands, cortexCommandLifecycle,
  cortexRouting, cortexRoutingRules, cortexEvents, cortexEventsLive,
}
const schemaNames = (): Map<z.ZodType, string> => {
  const names = new Map<z.ZodType, string>()
  const taken = new Map<string, z.ZodType>()
  for (const [moduleName, mod] of Object.entries(modules))
    for (const [exportName, value] of Object.entries(mod)) {
      if (!(value instanceof z.ZodType) || names.has(value)) continue
      const plain = taken.get(exportName)
      const name = plain === undefined ? exportName : `${moduleName[0]!.toUpperCase()}${moduleName.slice(1)}${exportName}`
      taken.set(name, value)
      names.set(value, name)
    }
  return names
}

const errorResponse = (description: string, extraHeaders?: Record<string, unknown>) => ({
  description,
  headers: {
    'x-request-id': { $ref: '#/components/headers/RequestId' },
    ...extraHeaders,
  },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
})

const ERROR_RESPONSES = {
  BadRequest: errorResponse('Malformed JSON or a failed schema (`VALIDATION_FAILED` names the field in `param`).'),
  Unauthorized: errorResponse('No token, or one that failed verification (`UNAUTHORIZED`, `TOKEN_INVALID`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`, `invalid_api_key`).'),
  Forbidden: errorResponse('The caller\'s role may not (`FORBIDDEN`).'),
  NotFound: errorResponse('No such resource or route (`NOT_FOUND`, `model_not_found`).'),
  PayloadTooLarge: errorResponse('The body is over `NEXUS_MAX_BODY_BYTES` (`BODY_TOO_LARGE`).'),
  UnsupportedMediaType: errorResponse('The body is not JSON (`UNSUPPORTED_MEDIA_TYPE`).'),
  TooManyRequests: errorResponse('A rate limit or lock (`RATE_LIMITED`, `LOGIN_LOCKED`).', {
    'retry-after': { description: 'Seconds to wait.', schema: { type: 'integer' } },
  }),
  Error: errorResponse('Any other error, in the same envelope (500 `INTERNAL`, 502/503 from Ollama or the database).'),
}

/** The error envelope every route answers with (CONTRACT.md). */
export const ErrorEnvelope = z.object({
  error: z.object({
    message: z.string(),
    type: z.enum(['invalid_request_error', 'authentication_error', 'permission_error', 'rate_limit_error', 'api_error']),
    code: z.string().nullable(),
    param: z.string().nullable(),
  }),
})

const queryParameters = (schema: JsonSchema, where: 'query' | 'path') => {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>
  const required = new Set((schema.required ?? []) as string[])
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    }
  })
}

const operationId = (fn: FunctionSpec, method: string, path: string) =>
  `${fn.name}.${method.toLowerCase()}${path
    .replace(/[{}]/g, '')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((s) => s[0]!.toUpperCase() + s.slice(1))
    .join('')}`

export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, Record<string, Record<string, unknown>>> }

/** Builds the document for the given functions (all of workers.config.ts by default). */
export const buildOpenApi = (specs: readonly FunctionSpec[] = functions): OpenApiDocument => {
  const names = schemaNames()
  const components: Record<string, JsonSchema> = { Error: toSchema(ErrorEnvelope) }
  const ref = (schema: z.ZodType) => {
    const name = names.get(schema)
    if (!name) return toSchema(schema)
    components[name] ??= toSchema(schema)
    return { $ref: `#/components/schemas/${name}` }
  }
  const paths: OpenApiDocument['paths'] = {}
  for (const fn of specs)
    for (const route of fn.routes) {
      const path = openApiPath(route.path)
      const method = route.method.toLowerCase()
      const doc = routeDocs[routeKey(route.method, route.path)] ?? {}
      const secured = requiresBearer(fn)
      const parameters: unknown[] = []
      const pathNames = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!)
      if (doc.params) parameters.push(...queryParameters(toSchema(doc.params), 'path'))
      for (const name of pathNames)
        if (!parameters.some((p) => (p as { name: string }).name === name))
          parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } })
      if (doc.query) parameters.push(...queryParameters(toSchema(doc.query), 'query'))

      const responses: Record<string, unknown> = {}
      for (const status of doc.ok ?? [200]) {
        if (status === 204) responses[status] = { description: 'No content.' }
        else if (doc.sse === 'always')
          responses[status] = { description: 'An event stream: `id:` and `data: {json}` frames.', content: { 'text/event-stream': { schema: { type: 'string' } } } }
        else if (fn.name === 'metrics')
          responses[status] = { description: 'Prometheus text format 0.0.4.', content: { 'text/plain': { schema: { type: 'string' } } } }
        else if (fn.name === 'dashboard')
          responses[status] = { description: 'The page or asset.', content: { 'text/html': { schema: { type: 'string' } } } }
        else
          responses[status] = {
            description: status === 201 ? 'Created.' : status === 503 ? 'Unhealthy: the same body, with the failing check.' : 'OK.',
            content: {
              'application/json': { schema: { type: 'object' } },
              ...(doc.sse === 'optional' ? { 'text/event-stream': { schema: { type: 'string', description: 'With `"stream": true`: `data: {chunk}` frames ending `data: [DONE]`.' } } } : {}),
            },
          }
      }
      if (doc.websocket) responses['101'] = { description: 'Switching protocols: WebSocket, one JSON event per message.' }
      if (doc.body || doc.query || doc.params) responses['400'] = { $ref: '#/components/responses/BadRequest' }
      if (secured) {
        responses['401'] = { $ref: '#/components/responses/Unauthorized' }
        responses['403'] = { $ref: '#/components/responses/Forbidden' }
      }
      if (pathNames.length) responses['404'] = { $ref: '#/components/responses/NotFound' }
      if (doc.body) {
        responses['413'] = { $ref: '#/components/responses/PayloadTooLarge' }
        responses['415'] = { $ref: '#/components/responses/UnsupportedMediaType' }
      }
      if (fn.name === 'auth-login' || fn.name === 'auth-verify' || fn.group === 'gateway')
        responses['429'] = { $ref: '#/components/responses/TooManyRequests' }
      responses.default = { $ref: '#/components/responses/Error' }

      paths[path] ??= {}
      paths[path]![method] = {
        operationId: operationId(fn, method, path),
        summary: doc.summary ?? fn.description,
        description: fn.description,
        tags: [fn.group],
        ...(parameters.length ? { parameters } : {}),
        ...(doc.body ? { requestBody: { required: fn.name !== 'auth-verify', content: { 'application/json': { schema: ref(doc.body) } } } } : {}),
        responses,
        security: secured ? [{ bearer: [] }] : OPTIONAL_AUTH.has(fn.name) ? [{ bearer: [] }, {}] : [],
        'x-nexus-function': fn.name,
        'x-nexus-group': fn.group,
        ...(fn.websocket && doc.websocket ? { 'x-nexus-websocket': true } : {}),
      }
    }

  return {
    openapi: '3.1.0',
    info: {
      title: 'NEXUS',
      version: pkg.version,
      description:
        'NEXUS: auth, the cortex command router and an OpenAI-compatible gateway to local Ollama. Every error is ' +
        '`{"error":{"message","type","code","param"}}` with an `x-request-id` header. Generated from workers.config.ts ' +
        'and the zod schemas the functions validate with.',
      license: { name: pkg.license },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'auth', description: 'Users, access tokens, keys (docs/AUTH.md).' },
      { name: 'cortex', description: 'Agents, commands, events (docs/CORTEX.md).' },
      { name: 'gateway', description: 'OpenAI-compatible AI gateway over local Ollama (docs/GATEWAY.md).' },
      { name: 'ops', description: 'Health, metrics, this description.' },
      { name: 'dashboard', description: 'The web dashboard.' },
    ],
    paths,
    components: {
      schemas: components,
      responses: ERROR_RESPONSES,
      headers: { RequestId: { description: 'The request id (echoed when the client sent a well-formed one).', schema: { type: 'string' } } },
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'An access token from POST /api/v1/auth/login. The gateway routes (/v1/*) also accept NEXUS_MASTER_KEY or a gateway key; ' +
            'the live-event routes also accept `?token=` for browsers.',
        },
      },
    },
  }
}
