/**
 * The deployment files: up to date with their generator, valid against Kubernetes' schemas (offline, with
 * kubernetes-models), carrying the seed's figures, and consistent with workers.config.ts and lib/env.ts:
 * every env key has a home, the configuration parses, every route reaches its service through the
 * Ingress and the compose proxy, and the gateway's egress stays inside the cluster.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import YAML from 'yaml'
import { describe, expect, it } from 'vitest'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { Service } from 'kubernetes-models/v1/Service'
import { functions, groupPorts } from '../../workers.config.ts'
import { EnvSchema, parseEnv } from '../../lib/env.ts'
import { selectFunctions } from '../../local-runtime/node/host.ts'
import { renderAll } from '../../scripts/gen-deploy.ts'

const root = join(import.meta.dirname, '..', '..')
const read = (path: string) => readFileSync(join(root, path), 'utf8')
// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML, asserted field by field
type Doc = Record<string, any>

const MODELS: Record<string, { new (data: never): { validate(): void } }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
}

const kustomization = YAML.parse(read('k8s/kustomization.yaml')) as Doc
const manifests: Array<{ file: string; doc: Doc }> = (kustomization.resources as string[]).flatMap((file) =>
  YAML.parseAllDocuments(read(`k8s/${file}`)).map((d) => ({ file, doc: d.toJS() as Doc })),
)
const find = (kind: string, name: string) => manifests.find((m) => m.doc.kind === kind && m.doc.metadata.name === name)?.doc
const envFile = (path: string) =>
  Object.fromEntries(
    read(path)
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )

/** The seed's figures, written out here on their own so that a generator change cannot move them unseen. */
const SEED = {
  cortex: { port: 8090, replicas: 3, hpa: [3, 10, 70], requests: ['250m', '256Mi'], limits: ['500m', '512Mi'] },
  gateway: { port: 4000, replicas: 2, hpa: [2, 8, 70], requests: ['500m', '512Mi'], limits: ['1000m', '2Gi'] },
  auth: { port: 8003, replicas: 2, hpa: [2, 6, 75], requests: ['200m', '128Mi'], limits: ['400m', '256Mi'] },
  dashboard: { port: 3000, replicas: 2 },
} as const

describe('generated deployment files', () => {
  it('are what `npm run gen:deploy` writes (CI runs `npm run gen:deploy -- --check` too)', () => {
    const stale = Object.entries(renderAll())
      .filter(([path, text]) => !existsSync(join(root, path)) || read(path) !== text)
      .map(([path]) => path)
    expect(stale, 'run npm run gen:deploy').toEqual([])
  })
})

describe('k8s/', () => {
  it('lists every manifest in the kustomization, for namespace nexus-prime', () => {
    const yamls = readdirSync(join(root, 'k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    expect([...kustomization.resources].sort()).toEqual(yamls.sort())
    expect(kustomization.namespace).toBe('nexus-prime')
    expect(find('Namespace', 'nexus-prime')).toBeDefined()
  })

  it("validates every object against Kubernetes' schemas", () => {
    const problems: string[] = []
    for (const { file, doc } of manifests) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`]
      if (!Model) {
        problems.push(`${file}: no schema for ${doc.apiVersion} ${doc.kind}`)
        continue
      }
      try {
        new Model(doc as never).validate()
      } catch (err) {
        problems.push(`${file} ${doc.kind}/${doc.metadata?.name}: ${(err as Error).message}`)
      }
    }
    expect(problems).toEqual([])
    expect(manifests.length).toBeGreaterThan(15)
  })

  it('the validator is not blind: a wrong type and a missing required field fail', () => {
    const dep = structuredClone(find('Deployment', 'cortex')!)
    dep.spec.template.spec.containers[0].ports[0].containerPort = 'eighty'
    expect(() => new Deployment(dep as never).validate()).toThrow(/containerPort/)
    const noSelector = structuredClone(find('Deployment', 'cortex')!)
    delete noSelector.spec.selector
    expect(() => new Deployment(noSelector as never).validate()).toThrow(/selector/)
  })

  it("has the seed's Deployments, Services, HPAs and PDBs per service group, with its requests and limits", () => {
    for (const [group, want] of Object.entries(SEED)) {
      const dep = find('Deployment', group)!
      expect(dep, group).toBeDefined()
      expect(dep.spec.replicas).toBe(want.replicas)
      const c = dep.spec.template.spec.containers[0]
      expect(c.ports[0].containerPort).toBe(want.port)
      expect(want.port).toBe(groupPorts[group as keyof typeof groupPorts])
      expect(c.env).toEqual(expect.arrayContaining([{ name: 'PORT', value: String(want.port) }]))
      if ('requests' in want) {
        expect([c.resources.requests.cpu, c.resources.requests.memory]).toEqual(want.requests)
        expect([c.resources.limits.cpu, c.resources.limits.memory]).toEqual(want.limits)
        const hpa = find('HorizontalPodAutoscaler', group)!
        expect([hpa.spec.minReplicas, hpa.spec.maxReplicas, hpa.spec.metrics[0].resource.target.averageUtilization]).toEqual(want.hpa)
        expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: group })
      } else expect(find('HorizontalPodAutoscaler', group)).toBeUndefined()
      expect(c.livenessProbe.httpGet).toEqual({ path: '/health/live', port: want.port })
      expect(c.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: want.port })
      const svc = find('Service', group)!
      expect(svc.spec.ports[0].port).toBe(want.port)
      expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels)
      const pdb = find('PodDisruptionBudget', group)!
      expect(pdb.spec.selector.matchLabels).toEqual(dep.spec.selector.matchLabels)
      // The pod serves its group and the health function its probes call.
      const selection = c.env.find((e: Doc) => e.name === 'NEXUS_SERVICE').value.split(',')
      expect(selectFunctions(selection).map((f) => f.name)).toEqual(expect.arrayContaining(['health', ...functions.filter((f) => f.group === group).map((f) => f.name)]))
    }
  })

  it('runs every pod and container as non-root, without privilege escalation', () => {
    for (const kind of ['Deployment', 'StatefulSet'])
      for (const { doc } of manifests.filter((m) => m.doc.kind === kind)) {
        const pod = doc.spec.template.spec
        expect(pod.securityContext.runAsNonRoot, doc.metadata.name).toBe(true)
        expect(pod.securityContext.runAsUser).toBeGreaterThan(0)
        expect(pod.automountServiceAccountToken).toBe(false)
        for (const c of pod.containers) {
          expect(c.securityContext, `${doc.metadata.name}/${c.name}`).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
          expect(c.resources.limits.memory).toBeDefined()
        }
      }
  })

  it('has StatefulSets with volumes for PostgreSQL, Redis (AOF, 256mb, allkeys-lru, password) and Ollama (a GPU)', () => {
    for (const name of ['postgres', 'redis', 'ollama']) {
      const sts = find('StatefulSet', name)!
      expect(sts, name).toBeDefined()
      expect(sts.spec.volumeClaimTemplates).toHaveLength(1)
      expect(find('Service', name)!.spec.clusterIP).toBe('None')
    }
    expect(find('StatefulSet', 'postgres')!.spec.template.spec.containers[0].image).toMatch(/^postgres:15/)
    const redis = find('StatefulSet', 'redis')!.spec.template.spec.containers[0]
    expect(redis.image).toMatch(/^redis:7/)
    expect(redis.args.join(' ')).toContain('--appendonly yes --maxmemory 256mb --maxmemory-policy allkeys-lru --requirepass $(REDIS_PASSWORD)')
    const ollama = find('StatefulSet', 'ollama')!.spec.template.spec.containers[0]
    expect(ollama.resources.limits['nvidia.com/gpu']).toBe('1')
  })

  it('keys the ConfigMap and the Secret exactly by the env names of lib/env.ts, and that configuration parses', () => {
    const config = find('ConfigMap', 'nexus-config')!.data as Record<string, string>
    const secrets = envFile('k8s/secrets.env.example')
    const envKeys = Object.keys(EnvSchema.shape).sort()
    const homes = [...Object.keys(config), ...Object.keys(secrets), 'PORT']
    expect(homes.sort()).toEqual(envKeys) // each key once: no key in two places, none missing, none invented
    for (const g of Object.keys(SEED)) {
      const env = {
        ...config,
        PORT: String(groupPorts[g as keyof typeof groupPorts]),
        DATABASE_URL: 'postgres://nexus:pw@postgres:5432/nexus',
        REDIS_URL: 'redis://:pw@redis:6379',
        NEXUS_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
      }
      const parsed = parseEnv(env)
      expect(parsed.OLLAMA_BASE_URL).toEqual(['http://ollama:11434'])
      expect(parsed.HOST).toBe('0.0.0.0')
    }
    expect(kustomization.secretGenerator.map((s: Doc) => s.name).sort()).toEqual(['nexus-datastores', 'nexus-secrets'])
    expect(Object.keys(envFile('k8s/datastores.env.example')).sort()).toEqual(['POSTGRES_PASSWORD', 'REDIS_PASSWORD'])
  })

  it('routes every route of workers.config.ts through the TLS Ingress to the service that serves it', () => {
    const ingress = find('Ingress', 'nexus')!
    const hosts = ['cortex.nexus.example.com', 'auth.nexus.example.com', 'ai.nexus.example.com', 'dashboard.nexus.example.com']
    expect(ingress.spec.tls[0].hosts.sort()).toEqual([...hosts].sort())
    expect(ingress.spec.rules.map((r: Doc) => r.host).sort()).toEqual([...hosts].sort())
    // Kubernetes' matching: Exact, else the longest Prefix by whole path segments.
    const route = (host: string, path: string): string | undefined => {
      const rule = ingress.spec.rules.find((r: Doc) => r.host === host)
      const paths = rule.http.paths as Doc[]
      const exact = paths.find((p) => p.pathType === 'Exact' && p.path === path)
      if (exact) return exact.backend.service.name
      const prefixes = paths
        .filter((p) => p.pathType === 'Prefix' && (p.path === '/' || path === p.path || path.startsWith(`${p.path.replace(/\/$/, '')}/`)))
        .sort((a, b) => b.path.length - a.path.length)
      return prefixes[0]?.backend.service.name
    }
    const serves = (service: string, fnGroup: string) => service === fnGroup || (fnGroup === 'ops' && service !== undefined)
    const problems: string[] = []
    for (const fn of functions)
      for (const r of fn.routes) {
        if (r.path === '/metrics') continue
        const sample = r.path.replace(/:[A-Za-z_]+/g, 'x1')
        const onDashboard = route('dashboard.nexus.example.com', sample)
        if (!onDashboard || !serves(onDashboard, fn.group)) problems.push(`dashboard host ${r.method} ${sample} -> ${onDashboard}`)
        const own = { cortex: 'cortex', auth: 'auth', gateway: 'ai', dashboard: 'dashboard', ops: undefined }[fn.group]
        if (own) {
          const got = route(`${own}.nexus.example.com`, sample)
          if (got !== fn.group) problems.push(`${own} host ${r.method} ${sample} -> ${got}`)
        }
      }
    expect(problems).toEqual([])
    expect(route('dashboard.nexus.example.com', '/metrics')).toBe('dashboard') // never exposed: the dashboard's 404
  })

  it("lets the gateway open connections only to Ollama, DNS, and the namespace's PostgreSQL and Redis", () => {
    const policy = find('NetworkPolicy', 'gateway-egress')!
    expect(policy.spec.policyTypes).toEqual(['Egress'])
    expect(policy.spec.podSelector.matchLabels).toEqual(find('Deployment', 'gateway')!.spec.selector.matchLabels)
    const peers = policy.spec.egress.flatMap((e: Doc) => e.to)
    expect(peers.some((p: Doc) => p.ipBlock)).toBe(false) // no address outside the cluster
    const targets = policy.spec.egress.map((e: Doc) => `${e.to[0].podSelector?.matchLabels?.['app.kubernetes.io/name'] ?? e.to[0].podSelector?.matchLabels?.['k8s-app']}:${e.ports.map((p: Doc) => p.port).join('/')}`)
    expect(targets.sort()).toEqual(['kube-dns:53/53', 'ollama:11434', 'postgres:5432', 'redis:6379'])
  })
})

describe('docker-compose.yml', () => {
  const compose = YAML.parse(read('docker-compose.yml')) as Doc
  const example = read('.env.example')

  it("has the seed's services: PostgreSQL 15, Redis 7 (AOF, 256mb, allkeys-lru, password), Ollama, four NEXUS groups, one proxy", () => {
    expect(Object.keys(compose.services).sort()).toEqual(['auth', 'cortex', 'dashboard', 'gateway', 'ollama', 'postgres', 'proxy', 'redis'])
    expect(compose.services.postgres.image).toMatch(/^postgres:15/)
    expect(compose.services.redis.image).toMatch(/^redis:7/)
    expect(compose.services.redis.command.join(' ')).toMatch(/--appendonly yes --maxmemory 256mb --maxmemory-policy allkeys-lru --requirepass \$\{REDIS_PASSWORD/)
    for (const [name, svc] of Object.entries(compose.services as Record<string, Doc>)) {
      expect(svc.restart, name).toBe('unless-stopped')
      expect(svc.healthcheck?.disable).not.toBe(true)
      for (const v of svc.volumes ?? []) expect(v, name).toMatch(/^\.\/(data|deploy)\//)
    }
    // The seed's ports, published by the proxy; the NEXUS services themselves have no route out.
    const published = compose.services.proxy.ports.map((p: string) => Number(p.split(':').pop()))
    expect(published.sort()).toEqual([4000, 8003, 8080, 8090])
    expect(compose.networks.internal.internal).toBe(true)
    for (const g of Object.keys(SEED)) {
      const svc = compose.services[g]
      expect(svc.networks).toEqual(['internal'])
      expect(svc.environment.PORT).toBe(String(groupPorts[g as keyof typeof groupPorts]))
      expect(svc.build.context).toBe('.')
    }
  })

  it('takes NEXUS env keys from lib/env.ts only, and every variable it reads from .env is in .env.example', () => {
    const envKeys = new Set(Object.keys(EnvSchema.shape))
    for (const g of Object.keys(SEED))
      for (const key of Object.keys(compose.services[g].environment)) expect(envKeys.has(key) || key === 'NEXUS_SERVICE', key).toBe(true)
    const used = new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]!))
    const documented = new Set([...example.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]!))
    expect([...used].filter((v) => !documented.has(v))).toEqual([])
    expect(existsSync(join(root, '.env'))).toBe(false) // never a real .env in the repository
    expect(execFileSync('git', ['ls-files', '.env'], { cwd: root, encoding: 'utf8' })).toBe('')
  })

  it.skipIf(!process.env.CI && spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status !== 0)(
    "passes `docker-compose config` with .env.example's secrets filled in, and refuses to start without them",
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'nexus-compose-'))
      try {
        const filled = example
          .replace(/^POSTGRES_PASSWORD=$/m, 'POSTGRES_PASSWORD=ci-postgres')
          .replace(/^REDIS_PASSWORD=$/m, 'REDIS_PASSWORD=ci-redis')
          .replace(/^NEXUS_KEY_ENCRYPTION_KEY=$/m, `NEXUS_KEY_ENCRYPTION_KEY=${Buffer.alloc(32, 1).toString('base64')}`)
        writeFileSync(join(dir, 'filled.env'), filled)
        writeFileSync(join(dir, 'empty.env'), example)
        const run = (envFile: string, files: string[]) =>
          spawnSync('docker-compose', ['--env-file', join(dir, envFile), ...files.flatMap((f) => ['-f', f]), 'config', '-q'], { cwd: root, encoding: 'utf8' })
        const ok = run('filled.env', ['docker-compose.yml', 'docker-compose.gpu.yml'])
        expect(ok.stderr).toBe('')
        expect(ok.status).toBe(0)
        const refused = run('empty.env', ['docker-compose.yml'])
        expect(refused.status).not.toBe(0)
        expect(refused.stderr).toMatch(/set POSTGRES_PASSWORD in \.env/)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )

  it.skipIf(!process.env.CI && spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status !== 0)(
    "has a proxy config nginx accepts (with service names as loopback: Debian's nginx 1.22 lacks `resolve`)",
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'nexus-nginx-'))
      try {
        const conf = read('deploy/nginx/nexus.conf')
          .replace(/server (\w+):(\d+) resolve;/g, 'server 127.0.0.1:$2;')
          .replace(/^resolver .*$/m, '')
        writeFileSync(join(dir, 'site.conf'), conf)
        writeFileSync(
          join(dir, 'nginx.conf'),
          `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  include ${dir}/site.conf;\n}\n`,
        )
        const res = spawnSync('nginx', ['-t', '-c', join(dir, 'nginx.conf'), '-p', dir], { encoding: 'utf8' })
        expect(res.stderr).toMatch(/syntax is ok/)
        expect(res.status).toBe(0)
        // Every route's path is routed somewhere other than the catch-all, except the dashboard's own.
        for (const fn of functions)
          for (const r of fn.routes) {
            const exact = conf.includes(`location = ${r.path} `)
            const prefix = r.path.includes('/:') && conf.includes(`location ^~ ${r.path.slice(0, r.path.indexOf('/:') + 1)} `)
            expect(exact || prefix || r.path === '/metrics', r.path).toBe(true)
          }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )
})
