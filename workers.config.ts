/**
 * The one map of NEXUS: every function, its file, routes, service group and the bindings it needs.
 * The Node and workerd hosts, the deployment files and the route checks all derive from this.
 */

export type ServiceGroup = 'auth' | 'cortex' | 'gateway' | 'ops' | 'dashboard'
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
/** What a function needs from its host: the database, the bus/cache, the Ollama pool, the auth key set. */
export type Binding = 'database' | 'bus' | 'ollama' | 'jwks'

export interface Route {
  method: Method
  /** Hono-style path: `:name` matches one segment. */
  path: string
}

export interface FunctionSpec {
  /** Unique, kebab-case; also the worker's name on workerd. */
  name: string
  /** Path from the project root to the module whose default export is `{ fetch }`. */
  file: string
  group: ServiceGroup
  routes: Route[]
  bindings: Binding[]
  /** Serves WebSocket upgrades. */
  websocket?: boolean
  description: string
}

const get = (...paths: string[]): Route[] => paths.map((path) => ({ method: 'GET', path }))
const post = (...paths: string[]): Route[] => paths.map((path) => ({ method: 'POST', path }))

export const functions = [
  {
    name: 'health',
    file: 'functions/health.ts',
    group: 'ops',
    routes: get('/health', '/health/live', '/health/ready'),
    bindings: ['database', 'bus', 'ollama'],
    description: 'Liveness, readiness, and checks of the database, bus and Ollama.',
  },
  {
    name: 'metrics',
    file: 'functions/metrics.ts',
    group: 'ops',
    routes: get('/metrics'),
    bindings: ['database', 'bus'],
    description: 'Prometheus metrics.',
  },
  {
    name: 'openapi',
    file: 'functions/openapi.ts',
    group: 'ops',
    routes: get('/openapi.json'),
    bindings: ['database'],
    description: 'The OpenAPI 3.1 description of every route, generated from workers.config.ts and the zod schemas.',
  },
  {
    name: 'auth-login',
    file: 'functions/auth-login.ts',
    group: 'auth',
    routes: post('/api/v1/auth/login'),
    bindings: ['database', 'bus'],
    description: 'Username and password -> RS256 access token; brute-force locks and a per-client rate limit.',
  },
  {
    name: 'auth-verify',
    file: 'functions/auth-verify.ts',
    group: 'auth',
    routes: post('/api/v1/auth/verify'),
    bindings: ['database', 'bus', 'jwks'],
    description: 'Verifies an access token (body or Bearer) and returns its claims.',
  },
  {
    name: 'auth-jwks',
    file: 'functions/auth-jwks.ts',
    group: 'auth',
    routes: get('/.well-known/jwks.json', '/api/v1/auth/.well-known/jwks.json'),
    bindings: ['database'],
    description: 'The public signing keys as an RFC 7517 key set, cacheable.',
  },
  {
    name: 'auth-keys-rotate',
    file: 'functions/auth-keys-rotate.ts',
    group: 'auth',
    routes: post('/api/v1/auth/keys/rotate'),
    bindings: ['database', 'bus', 'jwks'],
    description: 'Admin: rotates the signing key; older keys keep verifying until their tokens expire.',
  },
  {
    name: 'auth-logout',
    file: 'functions/auth-logout.ts',
    group: 'auth',
    routes: post('/api/v1/auth/logout'),
    bindings: ['database', 'bus', 'jwks'],
    description: 'Revokes the Bearer token everywhere until it expires.',
  },
  {
    name: 'auth-users-create',
    file: 'functions/auth-users-create.ts',
    group: 'auth',
    routes: post('/api/v1/auth/users'),
    bindings: ['database', 'bus', 'jwks'],
    description: 'Admin: creates a user with roles.',
  },
  {
    name: 'auth-me',
    file: 'functions/auth-me.ts',
    group: 'auth',
    routes: get('/api/v1/auth/me'),
    bindings: ['database', 'bus', 'jwks'],
    description: 'The authenticated user.',
  },
  {
    name: 'auth-health',
    file: 'functions/auth-health.ts',
    group: 'auth',
    routes: get('/api/v1/auth/health'),
    bindings: ['database', 'bus'],
    description: "The auth service's checks: database, bus, active signing key.",
  },
  {
    name: 'gateway-chat-completions',
    file: 'functions/gateway-chat-completions.ts',
    group: 'gateway',
    routes: [
      { method: 'POST', path: '/v1/chat/completions' },
      { method: 'POST', path: '/chat/completions' },
    ],
    bindings: ['database', 'bus', 'ollama', 'jwks'],
    description: 'OpenAI-compatible chat completions (whole and streamed) over the local Ollama pool.',
  },
  {
    name: 'gateway-models',
    file: 'functions/gateway-models.ts',
    group: 'gateway',
    routes: get('/v1/models', '/models', '/v1/models/:model'),
    bindings: ['database', 'bus', 'ollama', 'jwks'],
    description: 'Every model alias and every model the Ollama pool has, in OpenAI\'s list shape.',
  },
  {
    name: 'gateway-embeddings',
    file: 'functions/gateway-embeddings.ts',
    group: 'gateway',
    routes: [
      { method: 'POST', path: '/v1/embeddings' },
      { method: 'POST', path: '/embeddings' },
    ],
    bindings: ['database', 'bus', 'ollama', 'jwks'],
    description: 'OpenAI-compatible embeddings through Ollama /api/embed.',
  },
  {
    name: 'gateway-keys',
    file: 'functions/gateway-keys.ts',
    group: 'gateway',
    routes: [
      { method: 'POST', path: '/api/v1/gateway/keys' },
      { method: 'GET', path: '/api/v1/gateway/keys' },
      { method: 'GET', path: '/api/v1/gateway/keys/:id' },
      { method: 'PATCH', path: '/api/v1/gateway/keys/:id' },
      { method: 'DELETE', path: '/api/v1/gateway/keys/:id' },
    ],
    bindings: ['database', 'bus', 'jwks'],
    description: 'Admin: gateway keys with model lists, rate limits and budgets; shown once, stored hashed.',
  },
  {
    name: 'gateway-aliases',
    file: 'functions/gateway-aliases.ts',
    group: 'gateway',
    routes: [
      { method: 'GET', path: '/api/v1/gateway/aliases' },
      { method: 'POST', path: '/api/v1/gateway/aliases' },
      { method: 'PUT', path: '/api/v1/gateway/aliases/:alias' },
      { method: 'DELETE', path: '/api/v1/gateway/aliases/:alias' },
    ],
    bindings: ['database', 'bus', 'jwks'],
    description: 'Admin: model aliases in effect, and the rows that override the defaults and the models file.',
  },
  {
    name: 'gateway-usage',
    file: 'functions/gateway-usage.ts',
    group: 'gateway',
    routes: get('/api/v1/gateway/usage'),
    bindings: ['database', 'bus', 'jwks'],
    description: 'Admin: the gateway usage log, as rows or per model/key per time bucket.',
  },
  {
    name: 'cortex-agents',
    file: 'functions/cortex-agents.ts',
    group: 'cortex',
    routes: [
      { method: 'POST', path: '/api/v1/agents/register' },
      { method: 'GET', path: '/api/v1/agents' },
      { method: 'GET', path: '/api/v1/agents/:agent_id' },
      { method: 'POST', path: '/api/v1/agents/:agent_id/heartbeat' },
    ],
    bindings: ['database', 'bus', 'jwks'],
    description: 'Agent registration, listing with online/offline, heartbeats.',
  },
  {
    name: 'cortex-agent-state',
    file: 'functions/cortex-agent-state.ts',
    group: 'cortex',
    routes: [
      { method: 'GET', path: '/api/v1/agents/:agent_id/state' },
      { method: 'GET', path: '/api/v1/agents/:agent_id/state/:key' },
      { method: 'PUT', path: '/api/v1/agents/:agent_id/state/:key' },
      { method: 'DELETE', path: '/api/v1/agents/:agent_id/state/:key' },
    ],
    bindings: ['database', 'jwks'],
    description: "An agent's key-value state.",
  },
  {
    name: 'cortex-commands',
    file: 'functions/cortex-commands.ts',
    group: 'cortex',
    routes: [
      { method: 'POST', path: '/api/v1/commands' },
      { method: 'GET', path: '/api/v1/commands' },
      { method: 'GET', path: '/api/v1/commands/:id' },
      { method: 'POST', path: '/api/v1/commands/:id/retry' },
    ],
    bindings: ['database', 'bus', 'jwks'],
    description: 'Create (routed or addressed), read, list and retry commands.',
  },
  {
    name: 'cortex-command-lifecycle',
    file: 'functions/cortex-command-lifecycle.ts',
    group: 'cortex',
    routes: [
      { method: 'POST', path: '/api/v1/agents/:agent_id/commands/claim' },
      { method: 'POST', path: '/api/v1/commands/:id/complete' },
      { method: 'POST', path: '/api/v1/commands/:id/fail' },
    ],
    bindings: ['database', 'bus', 'jwks'],
    description: 'Claim under a lease (long-poll), complete, fail.',
  },
  {
    name: 'cortex-routing-rules',
    file: 'functions/cortex-routing-rules.ts',
    group: 'cortex',
    routes: [
      { method: 'GET', path: '/api/v1/routing-rules' },
      { method: 'POST', path: '/api/v1/routing-rules' },
      { method: 'PUT', path: '/api/v1/routing-rules/:id' },
      { method: 'DELETE', path: '/api/v1/routing-rules/:id' },
    ],
    bindings: ['database', 'jwks'],
    description: 'Routing rules for commands without an agent (admin).',
  },
  {
    name: 'cortex-events',
    file: 'functions/cortex-events.ts',
    group: 'cortex',
    routes: [
      { method: 'POST', path: '/api/v1/events' },
      { method: 'GET', path: '/api/v1/events' },
    ],
    bindings: ['database', 'bus', 'jwks'],
    description: 'Post an event; read the event log.',
  },
  {
    name: 'cortex-events-live',
    file: 'functions/cortex-events-live.ts',
    group: 'cortex',
    routes: [
      { method: 'GET', path: '/api/v1/events/ws' },
      { method: 'GET', path: '/api/v1/events/stream' },
    ],
    bindings: ['database', 'bus', 'jwks'],
    websocket: true,
    description: 'Live events over WebSocket and SSE, with resume.',
  },
  {
    name: 'dashboard',
    file: 'functions/dashboard.ts',
    group: 'dashboard',
    routes: get('/', '/assets/:file'),
    bindings: [],
    description: 'The NEXUS Dashboard: a page (and its assets) that talks only to the public API; API base configurable.',
  },
] as const satisfies readonly FunctionSpec[]

export type FunctionName = (typeof functions)[number]['name']

/** Default ports when each group is deployed on its own (the seed's layout). */
export const groupPorts: Record<ServiceGroup, number> = {
  auth: 8003,
  cortex: 8090,
  gateway: 4000,
  ops: 9090,
  dashboard: 3000,
}

export default { functions, groupPorts }
