/**
 * `npm run gen:deploy`: writes the deployment files from workers.config.ts and the figures below, so they
 * stay in step with the code: k8s/*.yaml (+ kustomization), docker-compose.yml (+ the GPU override), the
 * reverse proxy's nginx config, and one workerd config per function. `-- --check` writes nothing and
 * fails, naming the files, when any committed file differs from what would be written.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML from 'yaml'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { Service } from 'kubernetes-models/v1/Service'
import type { IHTTPIngressPath } from 'kubernetes-models/networking.k8s.io/v1/HTTPIngressPath'
import type { INetworkPolicyEgressRule } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyEgressRule'
import type { IContainer } from 'kubernetes-models/v1/Container'
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar'
import type { IProbe } from 'kubernetes-models/v1/Probe'
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext'
import { EnvSchema } from '../lib/env.ts'
import { COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from '../local-runtime/workerd/build.ts'
import { functions, groupPorts, type FunctionSpec, type ServiceGroup } from '../workers.config.ts'
import pkg from '../package.json' with { type: 'json' }

export const root = resolve(fileURLToPath(import.meta.url), '../..')

// ---- The figures (the seed's, where it gives them) ----

export const NAMESPACE = 'nexus-prime'
export const IMAGE = 'nexus'
export const IMAGE_TAG = pkg.version
/** UID/GID of the `nexus` user in the image (Dockerfile). */
export const NEXUS_UID = 10001

export interface GroupDeploy {
  group: Exclude<ServiceGroup, 'ops'>
  replicas: number
  hpa?: { min: number; max: number; cpu: number }
  resources: { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } }
  /** The Ingress host that fronts this service (the dashboard's host fronts every route). */
  host: string
}

export const GROUPS: GroupDeploy[] = [
  {
    group: 'cortex',
    replicas: 3,
    hpa: { min: 3, max: 10, cpu: 70 },
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
    host: 'cortex.nexus.example.com',
  },
  {
    group: 'auth',
    replicas: 2,
    hpa: { min: 2, max: 6, cpu: 75 },
    resources: { requests: { cpu: '200m', memory: '128Mi' }, limits: { cpu: '400m', memory: '256Mi' } },
    host: 'auth.nexus.example.com',
  },
  {
    group: 'gateway',
    replicas: 2,
    hpa: { min: 2, max: 8, cpu: 70 },
    resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1000m', memory: '2Gi' } },
    host: 'ai.nexus.example.com',
  },
  {
    // Not in the seed's resource table: sized like auth (one Node process serving a page and ops routes).
    group: 'dashboard',
    replicas: 2,
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '250m', memory: '256Mi' } },
    host: 'dashboard.nexus.example.com',
  },
]

/** Every pod serves its group plus the ops functions (health for the probes, metrics, /openapi.json). */
export const serviceSelection = (group: GroupDeploy['group']) => `${group},ops`

/** Env keys that hold secrets: in the Secret `nexus-secrets`; every other key of lib/env.ts is in the ConfigMap. */
export const SECRET_KEYS = [
  'DATABASE_URL',
  'REDIS_URL',
  'UPSTASH_REDIS_REST_TOKEN',
  'NEXUS_MASTER_KEY',
  'NEXUS_ADMIN_PASSWORD',
  'NEXUS_KEY_ENCRYPTION_KEY',
] as const
/** Set per Deployment, not in the ConfigMap. */
export const PER_POD_KEYS = ['PORT'] as const
export const ENV_KEYS = Object.keys(EnvSchema.shape)

/** The ConfigMap's values; every other non-secret key is present and empty, which lib/env.ts reads as unset. */
const CONFIG_VALUES: Record<string, string> = {
  HOST: '0.0.0.0',
  LOG_LEVEL: 'info',
  OLLAMA_BASE_URL: 'http://ollama:11434',
  NEXUS_ADMIN_USERNAME: 'admin',
  NEXUS_JWT_ISSUER: 'nexus',
  NEXUS_JWT_AUDIENCE: 'nexus',
  NEXUS_TOKEN_TTL: '86400',
  NEXUS_DB_SCHEMA: 'nexus_core',
  NEXUS_DB_POOL_MAX: '20',
  // Nothing is kept here when DATABASE_URL and NEXUS_KEY_ENCRYPTION_KEY are set; a writable scratch dir.
  NEXUS_DATA_DIR: '/tmp/nexus',
  // Behind a proxy every client has the proxy's address (NEXUS reads the socket, not X-Forwarded-For), so the
  // per-client login limits are shared by all clients: raised here; per-username locks are unchanged.
  NEXUS_LOGIN_RATE_LIMIT: '600',
  NEXUS_LOGIN_MAX_CLIENT_FAILURES: '500',
  NEXUS_VERIFY_RATE_LIMIT: '6000',
}

export const DATASTORE_KEYS = ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'] as const
export const PG = { user: 'nexus', database: 'nexus', image: 'postgres:15-alpine', uid: 70 }
export const REDIS = {
  image: 'redis:7-alpine',
  uid: 999,
  gid: 1000,
  args: ['--appendonly', 'yes', '--maxmemory', '256mb', '--maxmemory-policy', 'allkeys-lru'],
}
export const OLLAMA = { image: 'ollama/ollama', tag: 'latest', port: 11434 }

// ---- Routes: which upstream serves which path (for the reverse proxy and the Ingress) ----

export interface PathRule {
  /** `exact` for a static route, `prefix` for the static part of a route with parameters. */
  kind: 'exact' | 'prefix'
  path: string
  group: ServiceGroup
}

/** Path rules from workers.config.ts (a prefix claimed by two groups is an error in the config). */
export const pathRules = (specs: readonly FunctionSpec[] = functions): PathRule[] => {
  const rules = new Map<string, PathRule>()
  for (const f of specs)
    for (const r of f.routes) {
      const i = r.path.indexOf('/:')
      const rule: PathRule = i < 0 ? { kind: 'exact', path: r.path, group: f.group } : { kind: 'prefix', path: r.path.slice(0, i + 1), group: f.group }
      const key = `${rule.kind} ${rule.path}`
      const seen = rules.get(key)
      if (seen && seen.group !== rule.group) throw new Error(`${key} is claimed by groups ${seen.group} and ${rule.group}`)
      rules.set(key, rule)
    }
  return [...rules.values()].sort((a, b) => a.path.localeCompare(b.path) || a.kind.localeCompare(b.kind))
}

/** The upstream of a rule: ops routes go to the service of the host they arrive on (every pod serves them). */
const upstreamOf = (rule: PathRule, opsGroup: GroupDeploy['group']) => (rule.group === 'ops' ? opsGroup : rule.group)

// ---- nginx (the compose stack's reverse proxy, and the replica test's) ----

/** The proxy settings every NEXUS location needs: WebSocket upgrades, unbuffered SSE, long reads, client address. */
export const NGINX_PROXY_SETTINGS = [
  'proxy_http_version 1.1;',
  'proxy_set_header Upgrade $http_upgrade;',
  'proxy_set_header Connection $connection_upgrade;',
  'proxy_set_header Host $host;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  // SSE (events, streamed completions) must reach the client frame by frame.
  'proxy_buffering off;',
  'proxy_cache off;',
  'proxy_read_timeout 3600s;',
  'proxy_send_timeout 3600s;',
]

/** The `http`-level maps the proxy settings use. */
export const NGINX_MAPS = ['map $http_upgrade $connection_upgrade { default upgrade; "" ""; }']

const indent = (lines: string[], n: number) => lines.map((l) => (l ? ' '.repeat(n) + l : l))

/** `location` blocks routing every NEXUS route to its group's upstream (named `nexus_<group>`). */
export const nginxLocations = (opsGroup: GroupDeploy['group'], upstream = (g: string) => `nexus_${g}`, exclude: string[] = ['/metrics']) => {
  const out: string[] = []
  for (const rule of pathRules()) {
    if (exclude.includes(rule.path)) continue
    out.push(`location ${rule.kind === 'exact' ? '=' : '^~'} ${rule.path} { proxy_pass http://${upstream(upstreamOf(rule, opsGroup))}; }`)
  }
  // Anything else: the dashboard answers (its 404 is in the error envelope).
  out.push(`location / { proxy_pass http://${upstream('dashboard')}; }`)
  return out
}

const nginxCompose = () => {
  const groups = GROUPS.map((g) => g.group)
  const lines = [
    '# Generated by `npm run gen:deploy` (scripts/gen-deploy.ts) from workers.config.ts: do not edit by hand.',
    '# The compose stack\'s reverse proxy: one origin on :8080 routing each path to its service group, and the',
    '# seed\'s per-service ports (cortex 8090, auth 8003, gateway 4000) forwarding to that service alone.',
    '# Mounted as /etc/nginx/conf.d/default.conf in the nginx image (inside its `http` block).',
    '',
    ...NGINX_MAPS,
    '',
    // Docker's embedded DNS: resolve service names at request time, so a restarted container is found again.
    'resolver 127.0.0.11 valid=10s ipv6=off;',
    '',
    ...groups.flatMap((g) => [`upstream nexus_${g} {`, `  zone nexus_${g} 64k;`, `  server ${g}:${groupPorts[g]} resolve;`, '  keepalive 16;', '}', '']),
    'server {',
    '  listen 8080;',
    '  client_max_body_size 16m;',
    ...indent(NGINX_PROXY_SETTINGS, 2),
    '  # Prometheus scrapes each service directly; one process\'s /metrics through the proxy would mislead.',
    '  location = /metrics { return 404; }',
    ...indent(nginxLocations('cortex'), 2),
    '}',
    '',
    ...GROUPS.filter((g) => g.group !== 'dashboard').flatMap((g) => [
      'server {',
      `  listen ${groupPorts[g.group]};`,
      '  client_max_body_size 16m;',
      ...indent(NGINX_PROXY_SETTINGS, 2),
      `  location / { proxy_pass http://nexus_${g.group}; }`,
      '}',
      '',
    ]),
  ]
  return lines.join('\n')
}

// ---- Kubernetes ----

const labels = (component: string) => ({
  'app.kubernetes.io/name': component,
  'app.kubernetes.io/component': component,
  'app.kubernetes.io/part-of': 'nexus',
})
const selector = (component: string) => ({ 'app.kubernetes.io/name': component })

const RESTRICTED: ISecurityContext = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
}

const httpProbe = (path: string, port: number, extra: Partial<IProbe> = {}): IProbe => ({
  httpGet: { path, port },
  periodSeconds: 10,
  timeoutSeconds: 3,
  failureThreshold: 3,
  ...extra,
})

const nexusWorkload = (g: GroupDeploy) => {
  const port = groupPorts[g.group]
  const env: IEnvVar[] = [
    { name: 'PORT', value: String(port) },
    { name: 'NEXUS_SERVICE', value: serviceSelection(g.group) },
  ]
  const container: IContainer = {
    name: 'nexus',
    image: `${IMAGE}:${IMAGE_TAG}`,
    imagePullPolicy: 'IfNotPresent',
    ports: [{ name: 'http', containerPort: port }],
    env,
    envFrom: [{ configMapRef: { name: 'nexus-config' } }, { secretRef: { name: 'nexus-secrets' } }],
    resources: g.resources,
    startupProbe: httpProbe('/health/live', port, { periodSeconds: 2, failureThreshold: 30 }),
    livenessProbe: httpProbe('/health/live', port),
    readinessProbe: httpProbe('/health/ready', port, { periodSeconds: 5 }),
    // Endpoints are removed asynchronously: keep serving a few seconds before SIGTERM starts the drain.
    lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
    securityContext: { ...RESTRICTED, readOnlyRootFilesystem: true, runAsUser: NEXUS_UID, runAsGroup: NEXUS_UID },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
  }
  const deployment = new Deployment({
    metadata: { name: g.group, labels: labels(g.group) },
    spec: {
      replicas: g.replicas,
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector(g.group) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: labels(g.group),
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' },
        },
        spec: {
          automountServiceAccountToken: false,
          // The host drains for up to 25 s after SIGTERM (local-runtime/node/host.ts), after the 5 s preStop.
          terminationGracePeriodSeconds: 40,
          securityContext: { runAsNonRoot: true, runAsUser: NEXUS_UID, runAsGroup: NEXUS_UID, fsGroup: NEXUS_UID, seccompProfile: { type: 'RuntimeDefault' } },
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector(g.group) } },
          ],
          containers: [container],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  })
  const service = new Service({
    metadata: { name: g.group, labels: labels(g.group) },
    spec: { selector: selector(g.group), ports: [{ name: 'http', port, targetPort: 'http' }] },
  })
  const docs: object[] = [deployment, service]
  if (g.hpa)
    docs.push(
      new HorizontalPodAutoscaler({
        metadata: { name: g.group, labels: labels(g.group) },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: g.group },
          minReplicas: g.hpa.min,
          maxReplicas: g.hpa.max,
          metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: g.hpa.cpu } } }],
        },
      }),
    )
  docs.push(
    new PodDisruptionBudget({
      metadata: { name: g.group, labels: labels(g.group) },
      spec: { maxUnavailable: 1, selector: { matchLabels: selector(g.group) } },
    }),
  )
  return docs
}

const headless = (name: string, port: number) =>
  new Service({
    metadata: { name, labels: labels(name) },
    spec: { clusterIP: 'None', selector: selector(name), ports: [{ name: name === 'ollama' ? 'http' : name, port, targetPort: port }] },
  })

const secretEnv = (name: string, secret: string, key = name): IEnvVar => ({ name, valueFrom: { secretKeyRef: { name: secret, key } } })

const postgres = () => [
  headless('postgres', 5432),
  new StatefulSet({
    metadata: { name: 'postgres', labels: labels('postgres') },
    spec: {
      serviceName: 'postgres',
      replicas: 1,
      selector: { matchLabels: selector('postgres') },
      template: {
        metadata: { labels: labels('postgres') },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: PG.uid, runAsGroup: PG.uid, fsGroup: PG.uid, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'postgres',
              image: PG.image,
              ports: [{ name: 'postgres', containerPort: 5432 }],
              env: [
                { name: 'POSTGRES_USER', value: PG.user },
                { name: 'POSTGRES_DB', value: PG.database },
                secretEnv('POSTGRES_PASSWORD', 'nexus-datastores'),
                // A subdirectory: a volume's root may hold lost+found, which initdb refuses.
                { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
              ],
              resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1000m', memory: '1Gi' } },
              readinessProbe: { exec: { command: ['pg_isready', '-U', PG.user, '-d', PG.database] }, periodSeconds: 5 },
              livenessProbe: { exec: { command: ['pg_isready', '-U', PG.user, '-d', PG.database] }, periodSeconds: 10, failureThreshold: 6 },
              securityContext: { ...RESTRICTED, runAsUser: PG.uid, runAsGroup: PG.uid },
              volumeMounts: [{ name: 'data', mountPath: '/var/lib/postgresql/data' }],
            },
          ],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } } } }],
    },
  }),
]

const redis = () => [
  headless('redis', 6379),
  new StatefulSet({
    metadata: { name: 'redis', labels: labels('redis') },
    spec: {
      serviceName: 'redis',
      replicas: 1,
      selector: { matchLabels: selector('redis') },
      template: {
        metadata: { labels: labels('redis') },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: REDIS.uid, runAsGroup: REDIS.gid, fsGroup: REDIS.gid, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'redis',
              image: REDIS.image,
              // $(REDIS_PASSWORD) is expanded by Kubernetes from the container's env.
              args: ['redis-server', ...REDIS.args, '--requirepass', '$(REDIS_PASSWORD)', '--dir', '/data'],
              ports: [{ name: 'redis', containerPort: 6379 }],
              env: [secretEnv('REDIS_PASSWORD', 'nexus-datastores'), secretEnv('REDISCLI_AUTH', 'nexus-datastores', 'REDIS_PASSWORD')],
              resources: { requests: { cpu: '100m', memory: '320Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
              readinessProbe: { exec: { command: ['redis-cli', 'ping'] }, periodSeconds: 5 },
              livenessProbe: { exec: { command: ['redis-cli', 'ping'] }, periodSeconds: 10, failureThreshold: 6 },
              securityContext: { ...RESTRICTED, readOnlyRootFilesystem: true, runAsUser: REDIS.uid, runAsGroup: REDIS.gid },
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } } } }],
    },
  }),
]

const ollama = () => [
  headless('ollama', OLLAMA.port),
  new StatefulSet({
    metadata: { name: 'ollama', labels: labels('ollama') },
    spec: {
      serviceName: 'ollama',
      replicas: 1,
      selector: { matchLabels: selector('ollama') },
      template: {
        metadata: { labels: labels('ollama') },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: NEXUS_UID, runAsGroup: NEXUS_UID, fsGroup: NEXUS_UID, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'ollama',
              image: `${OLLAMA.image}:${OLLAMA.tag}`,
              ports: [{ name: 'http', containerPort: OLLAMA.port }],
              env: [
                { name: 'OLLAMA_HOST', value: `0.0.0.0:${OLLAMA.port}` },
                { name: 'HOME', value: '/ollama' },
                { name: 'OLLAMA_MODELS', value: '/ollama/models' },
              ],
              resources: {
                requests: { cpu: '1000m', memory: '4Gi', 'nvidia.com/gpu': '1' },
                limits: { cpu: '4000m', memory: '8Gi', 'nvidia.com/gpu': '1' },
              },
              readinessProbe: httpProbe('/api/version', OLLAMA.port, { periodSeconds: 5 }),
              livenessProbe: httpProbe('/api/version', OLLAMA.port, { failureThreshold: 6 }),
              securityContext: { ...RESTRICTED, runAsUser: NEXUS_UID, runAsGroup: NEXUS_UID },
              volumeMounts: [{ name: 'models', mountPath: '/ollama' }],
            },
          ],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'models' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '50Gi' } } } }],
    },
  }),
]

const ingress = () => {
  const rulesFor = (g: GroupDeploy) => {
    const paths = pathRules()
      .filter((r) => r.path !== '/metrics')
      .filter((r) => g.group === 'dashboard' || r.group === g.group || r.group === 'ops')
      .map((r): IHTTPIngressPath => ({
        path: r.kind === 'exact' ? r.path : r.path.replace(/\/$/, ''),
        pathType: r.kind === 'exact' ? 'Exact' : 'Prefix',
        backend: { service: { name: upstreamOf(r, g.group), port: { name: 'http' } } },
      }))
    if (g.group === 'dashboard') paths.push({ path: '/', pathType: 'Prefix', backend: { service: { name: 'dashboard', port: { name: 'http' } } } })
    return { host: g.host, http: { paths } }
  }
  return new Ingress({
    metadata: {
      name: 'nexus',
      labels: labels('ingress'),
      annotations: {
        // ingress-nginx: streams (SSE, WebSocket) stay open and unbuffered; bodies up to 16 MiB reach NEXUS's own limit.
        'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
        'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
        'nginx.ingress.kubernetes.io/proxy-buffering': 'off',
        'nginx.ingress.kubernetes.io/proxy-body-size': '16m',
        'nginx.ingress.kubernetes.io/ssl-redirect': 'true',
      },
    },
    spec: {
      ingressClassName: 'nginx',
      tls: [{ hosts: GROUPS.map((g) => g.host), secretName: 'nexus-tls' }],
      rules: GROUPS.map(rulesFor),
    },
  })
}

const networkPolicies = () => {
  const dns: INetworkPolicyEgressRule = {
    to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
    ports: [
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ],
  }
  const to = (name: string, port: number): INetworkPolicyEgressRule => ({ to: [{ podSelector: { matchLabels: selector(name) } }], ports: [{ protocol: 'TCP', port }] })
  return [
    new NetworkPolicy({
      metadata: {
        name: 'gateway-egress',
        labels: labels('gateway'),
        annotations: {
          'nexus/why':
            'No data leaves: the gateway may open connections only to Ollama, the cluster DNS, and this namespace\'s PostgreSQL and Redis (keys, limits, usage log). Nothing outside the cluster.',
        },
      },
      spec: {
        podSelector: { matchLabels: selector('gateway') },
        policyTypes: ['Egress'],
        egress: [to('ollama', OLLAMA.port), dns, to('postgres', 5432), to('redis', 6379)],
      },
    }),
  ]
}

const configMap = () => {
  const data: Record<string, string> = {}
  for (const key of ENV_KEYS) {
    if ((SECRET_KEYS as readonly string[]).includes(key) || (PER_POD_KEYS as readonly string[]).includes(key)) continue
    data[key] = CONFIG_VALUES[key] ?? ''
  }
  return new ConfigMap({ metadata: { name: 'nexus-config', labels: labels('config') }, data })
}

const HEADER = (what: string) =>
  `# Generated by \`npm run gen:deploy\` (scripts/gen-deploy.ts) from workers.config.ts and lib/env.ts: do not edit by hand.\n# ${what}\n`

const yamlDocs = (docs: object[]) =>
  docs.map((d) => YAML.stringify(JSON.parse(JSON.stringify(d)), { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' })).join('---\n')

/** The k8s/ files, by name. */
export const k8sFiles = (): Record<string, string> => {
  const files: Record<string, string> = {
    'namespace.yaml': HEADER('The namespace.') + yamlDocs([new Namespace({ metadata: { name: NAMESPACE, labels: { 'app.kubernetes.io/part-of': 'nexus' } } })]),
    'config.yaml':
      HEADER('Configuration: every non-secret key of lib/env.ts (empty = unset = its default). Secrets: secrets.env (kustomization).') +
      yamlDocs([configMap()]),
  }
  for (const g of GROUPS)
    files[`${g.group}.yaml`] =
      HEADER(`The ${g.group} service group: NEXUS_SERVICE=${serviceSelection(g.group)} on port ${groupPorts[g.group]}.`) + yamlDocs(nexusWorkload(g))
  files['postgres.yaml'] = HEADER(`PostgreSQL 15: database "${PG.database}", schema nexus_core inside it.`) + yamlDocs(postgres())
  files['redis.yaml'] = HEADER('Redis 7: AOF on, maxmemory 256mb, allkeys-lru, a password.') + yamlDocs(redis())
  files['ollama.yaml'] = HEADER('Ollama with a GPU and a volume for models (pull them yourself: docs/DEPLOYMENT_GUIDE.md).') + yamlDocs(ollama())
  files['ingress.yaml'] = HEADER('TLS Ingress for the four hosts; paths from workers.config.ts.') + yamlDocs([ingress()])
  files['network-policy.yaml'] = HEADER('Egress of the gateway: Ollama, DNS, PostgreSQL and Redis only.') + yamlDocs(networkPolicies())
  const resources = Object.keys(files)
  files['kustomization.yaml'] =
    HEADER('`kubectl apply -k k8s/` after creating secrets.env and datastores.env from their .example files.') +
    YAML.stringify(
      {
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        namespace: NAMESPACE,
        resources,
        secretGenerator: [
          { name: 'nexus-secrets', envs: ['secrets.env'] },
          { name: 'nexus-datastores', envs: ['datastores.env'] },
        ],
        generatorOptions: { disableNameSuffixHash: true },
        images: [{ name: IMAGE, newName: IMAGE, newTag: IMAGE_TAG }],
      },
      { lineWidth: 0, version: '1.1' },
    )
  files['secrets.env.example'] = [
    '# Copy to k8s/secrets.env (ignored by git) and fill in; `kubectl apply -k k8s/` makes the Secret nexus-secrets.',
    '# Keys are the env names of lib/env.ts. Passwords: `openssl rand -hex 24` (URL-safe, no escaping needed).',
    `DATABASE_URL=postgres://${PG.user}:<POSTGRES_PASSWORD>@postgres:5432/${PG.database}`,
    'REDIS_URL=redis://:<REDIS_PASSWORD>@redis:6379',
    '# 32 random bytes, base64 (`openssl rand -base64 32`): seals the signing keys; the same on every pod. Back it up.',
    'NEXUS_KEY_ENCRYPTION_KEY=',
    '# The gateway admin key (16+ characters; `openssl rand -hex 24`); empty = none.',
    'NEXUS_MASTER_KEY=',
    '# The first admin\'s password (8+ characters); empty = generated and printed once in the first auth pod\'s log.',
    'NEXUS_ADMIN_PASSWORD=',
    '# Only with the Redis REST driver (UPSTASH_REDIS_REST_URL in config.yaml).',
    'UPSTASH_REDIS_REST_TOKEN=',
    '',
  ].join('\n')
  files['datastores.env.example'] = [
    '# Copy to k8s/datastores.env (ignored by git); `kubectl apply -k k8s/` makes the Secret nexus-datastores.',
    '# The same passwords go into DATABASE_URL and REDIS_URL in secrets.env.',
    'POSTGRES_PASSWORD=',
    'REDIS_PASSWORD=',
    '',
  ].join('\n')
  return files
}

// ---- docker-compose ----

/** The compose file's NEXUS environment (the same keys as the ConfigMap and Secret; values from .env). */
const composeNexusEnv = (g: GroupDeploy) => ({
  HOST: '0.0.0.0',
  PORT: String(groupPorts[g.group]),
  NEXUS_SERVICE: serviceSelection(g.group),
  DATABASE_URL: `postgres://${PG.user}:\${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}@postgres:5432/${PG.database}`,
  REDIS_URL: 'redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}@redis:6379',
  OLLAMA_BASE_URL: `http://ollama:${OLLAMA.port}`,
  NEXUS_KEY_ENCRYPTION_KEY: '${NEXUS_KEY_ENCRYPTION_KEY:?set NEXUS_KEY_ENCRYPTION_KEY in .env (openssl rand -base64 32)}',
  NEXUS_MASTER_KEY: '${NEXUS_MASTER_KEY:-}',
  NEXUS_ADMIN_USERNAME: '${NEXUS_ADMIN_USERNAME:-admin}',
  NEXUS_ADMIN_PASSWORD: '${NEXUS_ADMIN_PASSWORD:-}',
  NEXUS_JWT_ISSUER: '${NEXUS_JWT_ISSUER:-nexus}',
  NEXUS_JWT_AUDIENCE: '${NEXUS_JWT_AUDIENCE:-nexus}',
  NEXUS_TOKEN_TTL: '${NEXUS_TOKEN_TTL:-86400}',
  NEXUS_CORS_ORIGINS: '${NEXUS_CORS_ORIGINS:-}',
  NEXUS_DATA_DIR: '/tmp/nexus',
  NEXUS_LOGIN_RATE_LIMIT: '${NEXUS_LOGIN_RATE_LIMIT:-600}',
  NEXUS_LOGIN_MAX_CLIENT_FAILURES: '${NEXUS_LOGIN_MAX_CLIENT_FAILURES:-500}',
  NEXUS_VERIFY_RATE_LIMIT: '${NEXUS_VERIFY_RATE_LIMIT:-6000}',
  LOG_LEVEL: '${LOG_LEVEL:-info}',
})

const composeFile = () => {
  const nexus = Object.fromEntries(
    GROUPS.map((g) => [
      g.group,
      {
        build: { context: '.', target: 'runtime' },
        image: `${IMAGE}:\${NEXUS_VERSION:-${IMAGE_TAG}}`,
        restart: 'unless-stopped',
        environment: composeNexusEnv(g),
        // The image's HEALTHCHECK (GET /health/live on $PORT) applies.
        depends_on: { postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } },
        read_only: true,
        tmpfs: ['/tmp'],
        security_opt: ['no-new-privileges:true'],
        cap_drop: ['ALL'],
        // No route out: this network is internal; only the proxy also sits on the published one.
        networks: ['internal'],
      },
    ]),
  )
  return {
    services: {
      postgres: {
        image: PG.image,
        restart: 'unless-stopped',
        environment: { POSTGRES_USER: PG.user, POSTGRES_DB: PG.database, POSTGRES_PASSWORD: '${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}' },
        volumes: ['./data/db_data:/var/lib/postgresql/data'],
        healthcheck: { test: ['CMD', 'pg_isready', '-U', PG.user, '-d', PG.database], interval: '5s', timeout: '3s', retries: 20 },
        networks: ['internal'],
      },
      redis: {
        image: REDIS.image,
        restart: 'unless-stopped',
        command: ['redis-server', ...REDIS.args, '--requirepass', '${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}'],
        environment: { REDISCLI_AUTH: '${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}' },
        volumes: ['./data/redis_data:/data'],
        healthcheck: { test: ['CMD', 'redis-cli', 'ping'], interval: '5s', timeout: '3s', retries: 20 },
        networks: ['internal'],
      },
      ollama: {
        image: `${OLLAMA.image}:\${OLLAMA_VERSION:-${OLLAMA.tag}}`,
        restart: 'unless-stopped',
        volumes: ['./data/ollama:/root/.ollama'],
        healthcheck: { test: ['CMD', 'ollama', 'list'], interval: '10s', timeout: '5s', retries: 10 },
        // `internal` for the gateway; `models` only so that `ollama pull` can download (see DEPLOYMENT_GUIDE.md).
        networks: ['internal', 'models'],
      },
      ...nexus,
      proxy: {
        image: 'nginx:1.27-alpine',
        restart: 'unless-stopped',
        volumes: ['./deploy/nginx/nexus.conf:/etc/nginx/conf.d/default.conf:ro'],
        ports: [
          '${NEXUS_BIND:-127.0.0.1}:${NEXUS_HTTP_PORT:-8080}:8080',
          ...GROUPS.filter((g) => g.group !== 'dashboard').map((g) => `\${NEXUS_BIND:-127.0.0.1}:${groupPorts[g.group]}:${groupPorts[g.group]}`),
        ],
        depends_on: Object.fromEntries(GROUPS.map((g) => [g.group, { condition: 'service_healthy' }])),
        healthcheck: { test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/health/live'], interval: '10s', timeout: '3s', retries: 5 },
        networks: ['internal', 'edge'],
      },
    },
    networks: {
      internal: { internal: true },
      edge: {},
      models: {},
    },
  }
}

const composeGpu = () => ({
  services: {
    ollama: { deploy: { resources: { reservations: { devices: [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }] } } } },
  },
})

// ---- workerd ----

/** The workerd config (Cap'n Proto text) serving one function on its own, its bindings from the environment. */
export const workerdConfig = (fn: FunctionSpec, modulePath: string, port = 8080) => {
  const bindings = ENV_KEYS.filter((k) => k !== 'PORT' && k !== 'HOST').map((k) => `    (name = "${k}", fromEnvironment = "${k}"),`)
  return [
    `# Generated by \`npm run gen:deploy\` (scripts/gen-deploy.ts): the function "${fn.name}" (${fn.group}) alone on workerd.`,
    `# Build its module first: npm run build:workerd (writes .build/workerd/${fn.name}.mjs).`,
    `# Run: workerd serve deploy/workerd/${fn.name}.capnp [--socket-addr http=0.0.0.0:PORT]`,
    '# Every binding is the process environment variable of the same name (lib/env.ts; unset = null = default).',
    '# Egress: private and loopback addresses only (the database, Redis and Ollama live there); no public internet.',
    'using Workerd = import "/workerd/workerd.capnp";',
    '',
    'const config :Workerd.Config = (',
    '  services = [',
    '    (name = "main", worker = .worker),',
    '    (name = "egress", network = (allow = ["private", "local"])),',
    '  ],',
    `  sockets = [ (name = "http", address = "*:${port}", http = (), service = "main") ],`,
    ');',
    '',
    'const worker :Workerd.Worker = (',
    `  modules = [ (name = "worker", esModule = embed "${modulePath}") ],`,
    `  compatibilityDate = "${COMPATIBILITY_DATE}",`,
    `  compatibilityFlags = [${COMPATIBILITY_FLAGS.map((f) => `"${f}"`).join(', ')}],`,
    '  globalOutbound = "egress",',
    '  bindings = [',
    ...bindings,
    '  ],',
    ');',
    '',
  ].join('\n')
}

// ---- all files ----

/** Every generated file, by path from the project root. */
export const renderAll = (): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, text] of Object.entries(k8sFiles())) out[`k8s/${name}`] = text
  out['docker-compose.yml'] =
    HEADER('The seed\'s stack: PostgreSQL 15, Redis 7, Ollama, the four NEXUS services and one reverse proxy. Secrets from .env (see .env.example).') +
    YAML.stringify(composeFile(), { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' })
  out['docker-compose.gpu.yml'] =
    HEADER('Optional: give Ollama an NVIDIA GPU. docker-compose -f docker-compose.yml -f docker-compose.gpu.yml up -d') +
    YAML.stringify(composeGpu(), { lineWidth: 0, version: '1.1' })
  out['deploy/nginx/nexus.conf'] = nginxCompose()
  for (const fn of functions) out[`deploy/workerd/${fn.name}.capnp`] = workerdConfig(fn, `../../.build/workerd/${fn.name}.mjs`)
  return out
}

const main = () => {
  const check = process.argv.includes('--check')
  const files = renderAll()
  const stale: string[] = []
  for (const [path, text] of Object.entries(files)) {
    const abs = join(root, path)
    const current = existsSync(abs) ? readFileSync(abs, 'utf8') : undefined
    if (current === text) continue
    if (check) stale.push(path)
    else {
      mkdirSync(dirname(abs), { recursive: true })
      writeFileSync(abs, text)
      console.log(`wrote ${relative(root, abs)}`)
    }
  }
  if (check) {
    if (stale.length) {
      console.error(`gen:deploy: out of date (run npm run gen:deploy): ${stale.join(', ')}`)
      process.exit(1)
    }
    console.log(`gen:deploy: ${Object.keys(files).length} files up to date`)
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
