/**
 * The Dockerfile, without a Docker engine (there is none here): its stages, user, health check and entry
 * point are checked statically, every file it copies exists and is not excluded by .dockerignore, and
 * every npm script it runs exists. Then the runtime stage is assembled the way `docker build` would (its
 * COPY and RUN steps, into a temporary directory) and started as its ENTRYPOINT, so a missing file or a
 * pruned package the host still needs fails here.
 */
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { functions } from '../../workers.config.ts'
import { dropSchema } from '../support/harness.ts'
import { freePort, waitFor200 } from '../support/process.ts'

const root = join(import.meta.dirname, '..', '..')
const read = (p: string) => readFileSync(join(root, p), 'utf8')

interface Instruction {
  cmd: string
  args: string
}
interface Stage {
  base: string
  name: string
  steps: Instruction[]
}

/** Parses a Dockerfile: continuation lines joined, comment lines dropped (as Docker does), ARG defaults substituted. */
export const parseDockerfile = (text: string) => {
  const logical: string[] = []
  let current = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('#')) continue
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `
      continue
    }
    current += line
    if (current.trim()) logical.push(current.trim())
    current = ''
  }
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const line of logical) {
    const [cmd, ...rest] = line.split(/\s+/)
    const upper = cmd!.toUpperCase()
    const body = rest.join(' ')
    if (upper === 'ARG' && stages.length === 0) {
      const [k, v] = body.split('=')
      args[k!] = v ?? ''
      continue
    }
    if (upper === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(body)!
      stages.push({ base: m[1]!.replace(/\$\{(\w+)\}/g, (_, k) => args[k] ?? ''), name: m[2] ?? String(stages.length), steps: [] })
      continue
    }
    stages.at(-1)!.steps.push({ cmd: upper, args: body })
  }
  return stages
}

/** .dockerignore semantics: a path is excluded when the last pattern matching it (or a parent) is not negated. */
const dockerignore = (text: string) => {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!')
      const pattern = negate ? l.slice(1) : l
      const source = pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '\u0000')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\u0000/g, '(?:.*/)?')
      return { negate, re: new RegExp(`^${source}$`) }
    })
  return (path: string) => {
    const parts = path.split('/')
    let excluded = false
    for (const rule of rules)
      for (let i = 1; i <= parts.length; i++) if (rule.re.test(parts.slice(0, i).join('/'))) excluded = !rule.negate
    return excluded
  }
}

const stages = parseDockerfile(read('Dockerfile'))
const stage = (name: string) => stages.find((s) => s.name === name)!
const isIgnored = dockerignore(read('.dockerignore'))
const jsonArgs = (s: string) => JSON.parse(s) as string[]
const copyOf = (i: Instruction) => {
  const from = /--from=(\S+)/.exec(i.args)?.[1]
  const parts = i.args.replace(/--\S+/g, '').trim().split(/\s+/)
  return { from, sources: parts.slice(0, -1), dest: parts.at(-1)! }
}
const copies = (s: Stage) => s.steps.filter((i) => i.cmd === 'COPY').map(copyOf)

describe('Dockerfile (static: there is no Docker engine here)', () => {
  it('has a dependency stage, a Node runtime on node:20-bookworm-slim, and a workerd target', () => {
    expect(stages.map((s) => s.name)).toEqual(['deps', 'runtime', 'workerd-build', 'workerd'])
    expect(stage('runtime').base).toBe('node:20-bookworm-slim')
    expect(stage('deps').base).toBe('node:20-bookworm-slim')
  })

  it('runs as a non-root user, with a health check on /health/live and node itself as PID 1', () => {
    for (const name of ['runtime', 'workerd']) {
      const user = stage(name).steps.filter((i) => i.cmd === 'USER').at(-1)?.args
      expect(user, name).toBe('10001:10001')
      expect(stage(name).steps.some((i) => i.cmd === 'HEALTHCHECK'), name).toBe(true)
    }
    const runtime = stage('runtime')
    expect(runtime.steps.find((i) => i.cmd === 'HEALTHCHECK')!.args).toContain('/health/live')
    const entry = jsonArgs(runtime.steps.find((i) => i.cmd === 'ENTRYPOINT')!.args)
    expect(entry).toEqual(['node', '--import', 'tsx', 'local-runtime/node/main.ts'])
    expect(existsSync(join(root, entry[3]!))).toBe(true)
    // tsx must be a production dependency, since the image runs TypeScript through it.
    expect(JSON.parse(read('package.json')).dependencies.tsx).toBeDefined()
  })

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    const problems: string[] = []
    for (const s of stages)
      for (const c of copies(s)) {
        if (c.from) continue
        for (const src of c.sources) {
          if (!existsSync(join(root, src))) problems.push(`${s.name}: COPY ${src}: no such file`)
          else if (isIgnored(src)) problems.push(`${s.name}: COPY ${src}: excluded by .dockerignore`)
        }
      }
    expect(problems).toEqual([])
    for (const never of ['node_modules', '.env', 'data', '.git', 'lib/env.test.ts']) expect(isIgnored(never), never).toBe(true)
    expect(isIgnored('.env.example')).toBe(false)
  })

  it('runs only npm scripts that exist, and npm ci with its lock file', () => {
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>
    for (const s of stages)
      for (const i of s.steps.filter((x) => x.cmd === 'RUN')) {
        for (const m of i.args.matchAll(/npm run (\S+)/g)) expect(scripts[m[1]!], `${s.name}: npm run ${m[1]}`).toBeDefined()
        if (/npm ci/.test(i.args)) expect(copies(s).some((c) => c.sources.includes('package-lock.json')), s.name).toBe(true)
      }
  })

  it('serves each function on workerd from its generated config and its `npm run build:workerd` bundle', () => {
    const entry = jsonArgs(stage('workerd').steps.find((i) => i.cmd === 'ENTRYPOINT')!.args).join(' ')
    expect(entry).toContain('deploy/workerd/${NEXUS_FUNCTION}.capnp')
    expect(read('local-runtime/workerd/build.ts')).toContain("join(root, '.build', 'workerd')")
    for (const fn of functions) expect(read(`deploy/workerd/${fn.name}.capnp`)).toContain(`embed "../../.build/workerd/${fn.name}.mjs"`)
    expect(copies(stage('workerd')).map((c) => c.sources.join(' '))).toEqual(
      expect.arrayContaining(['/app/.build/workerd', 'deploy/workerd']),
    )
  })
})

// Assembling the stage runs `npm ci` (about 20 s on a warm npm cache): in CI's real-server suite, or on request.
const assemble = Boolean(process.env.DATABASE_URL && (process.env.CI || process.env.NEXUS_IMAGE_TEST))

describe.skipIf(!assemble)('Dockerfile runtime stage, assembled without Docker', () => {
  const work = mkdtempSync(join(tmpdir(), 'nexus-image-'))
  const schema = `t_image_${Date.now()}`
  afterAll(async () => {
    rmSync(work, { recursive: true, force: true })
    await dropSchema(inject('databaseUrl'), schema)
  })

  it('builds like docker build and starts every function as its ENTRYPOINT, healthy, draining on SIGTERM', { timeout: 240_000 }, async () => {
    const dirs: Record<string, string> = {}
    for (const s of [stage('deps'), stage('runtime')]) {
      const dir = join(work, s.name)
      mkdirSync(dir, { recursive: true })
      dirs[s.name] = dir
      const env: Record<string, string> = {}
      for (const i of s.steps) {
        if (i.cmd === 'ENV') for (const m of i.args.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!
        if (i.cmd === 'COPY') {
          const c = copyOf(i)
          for (const src of c.sources) {
            const from = c.from ? join(dirs[c.from]!, relative('/app', src)) : join(root, src)
            const to = join(dir, c.dest === './' ? src.split('/').pop()! : c.dest)
            cpSync(from, to, { recursive: true, filter: (p) => c.from !== undefined || !isIgnored(relative(root, p)) })
          }
        }
        // The deps stage's RUN, as written, except that it leaves this machine's npm cache alone.
        if (i.cmd === 'RUN' && s.name === 'deps') {
          const res = spawnSync('bash', ['-c', i.args.replace('npm cache clean --force', 'true')], { cwd: dir, env: { ...process.env, ...env }, encoding: 'utf8' })
          expect(res.status, res.stderr.slice(-2000)).toBe(0)
        }
      }
      dirs[`${s.name}:env`] = JSON.stringify(env)
    }
    const app = dirs.runtime!
    expect(existsSync(join(app, 'node_modules', 'miniflare'))).toBe(false) // pruned, as in the image
    expect(existsSync(join(app, 'dashboard', 'dist', 'assets.gen.ts'))).toBe(true) // built by postinstall
    mkdirSync(join(app, 'data'), { recursive: true })

    const port = await freePort()
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      ...JSON.parse(dirs['runtime:env']!),
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: inject('databaseUrl'),
      NEXUS_DB_SCHEMA: schema,
      NEXUS_BUS_PREFIX: `${schema}:`,
      NEXUS_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64'),
      NEXUS_ADMIN_PASSWORD: 'image-admin-password',
      OLLAMA_BASE_URL: 'http://127.0.0.1:9',
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    }
    const [cmd, ...args] = jsonArgs(stage('runtime').steps.find((i) => i.cmd === 'ENTRYPOINT')!.args)
    const child = spawn(cmd!, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      await waitFor200(`http://127.0.0.1:${port}/health/ready`, 60_000, { child, output: () => out, exited })
      for (const path of ['/openapi.json', '/', '/.well-known/jwks.json', '/metrics']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`)
        expect(res.status, `${path}: ${out.slice(-1000)}`).toBe(200)
        await res.body?.cancel()
      }
      // The HEALTHCHECK's command, as Docker would run it inside the container.
      const hc = stage('runtime').steps.find((i) => i.cmd === 'HEALTHCHECK')!.args
      const [hcCmd, ...hcArgs] = jsonArgs(hc.slice(hc.indexOf('CMD') + 3).trim())
      expect(spawnSync(hcCmd!, hcArgs, { env, cwd: app }).status).toBe(0)
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
    expect(out).not.toContain('image-admin-password')
  })
})
