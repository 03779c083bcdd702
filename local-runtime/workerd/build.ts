/**
 * Bundles each function of workers.config.ts (and the router that fronts them) into one ES module
 * for workerd, with esbuild. `npm run build:workerd` writes them to .build/workerd/.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'
import { functions, type FunctionSpec } from '../../workers.config.ts'

export const COMPATIBILITY_DATE = '2026-04-01'
export const COMPATIBILITY_FLAGS = ['nodejs_compat']

const root = resolve(fileURLToPath(import.meta.url), '../../..')

/** The service-binding name under which the router reaches a function. */
export const bindingName = (fn: string) => `FN_${fn.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`

// Node built-ins become `node:` imports that workerd's nodejs_compat provides; bare names are rewritten.
const builtins = new RegExp(`^(node:)?(${builtinModules.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`)
const nodeBuiltins: esbuild.Plugin = {
  name: 'node-builtins',
  setup(build) {
    build.onResolve({ filter: builtins }, (args) => ({
      path: args.path.startsWith('node:') ? args.path : `node:${args.path}`,
      external: true,
    }))
  },
}

const options = (entry: esbuild.BuildOptions): esbuild.BuildOptions => ({
  ...entry,
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  conditions: ['workerd', 'worker', 'browser', 'import'],
  mainFields: ['module', 'main'],
  external: ['cloudflare:*'],
  plugins: [nodeBuiltins],
  // CommonJS dependencies (ioredis) `require()` built-ins; give them a require that workerd can serve.
  banner: { js: "import { createRequire as __nexusRequire } from 'node:module'; const require = __nexusRequire('/');" },
  minify: true,
  legalComments: 'none',
  write: false,
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: root,
})

// A bundle cache under .build/workerd-cache/: each entry keeps the code and the content hash of every
// file esbuild read for it, and is used only while every one of those files is unchanged. Tests start
// dozens of workerd hosts; without it each one re-bundles every function (seconds of CPU apiece).
const cacheDir = join(root, '.build', 'workerd-cache')
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex')
// The bundler's own settings are part of every key: this file's text.
const builderHash = sha(readFileSync(fileURLToPath(import.meta.url)))
type Memo = Map<string, string | null>
const hashFile = (fileHashes: Memo, path: string) => {
  let h = fileHashes.get(path)
  if (h === undefined) {
    try {
      h = sha(readFileSync(join(root, path)))
    } catch {
      h = null
    }
    fileHashes.set(path, h)
  }
  return h
}
interface CacheEntry {
  inputs: Record<string, string>
  code: string
}
const cached = (key: string, memo: Memo): string | undefined => {
  if (process.env.NEXUS_BUILD_CACHE === 'off') return undefined
  try {
    const entry = JSON.parse(readFileSync(join(cacheDir, `${key}.json`), 'utf8')) as CacheEntry
    for (const [path, hash] of Object.entries(entry.inputs)) if (hashFile(memo, path) !== hash) return undefined
    return entry.code
  } catch {
    return undefined
  }
}
const store = (key: string, code: string, metafile: esbuild.Metafile | undefined, memo: Memo) => {
  if (process.env.NEXUS_BUILD_CACHE === 'off' || !metafile) return
  const inputs: Record<string, string> = {}
  for (const path of Object.keys(metafile.inputs)) {
    if (path.startsWith('<stdin>')) continue
    const hash = hashFile(memo, path)
    if (hash === null) return // a virtual or vanished input: do not cache what cannot be checked
    inputs[path] = hash
  }
  try {
    mkdirSync(cacheDir, { recursive: true })
    const tmp = join(cacheDir, `${key}.${process.pid}.tmp`)
    writeFileSync(tmp, JSON.stringify({ inputs, code } satisfies CacheEntry))
    renameSync(tmp, join(cacheDir, `${key}.json`)) // atomic: parallel test workers never read half a file
  } catch {
    // A read-only tree builds every time; nothing else changes.
  }
}

/**
 * Bundles with esbuild, through the cache; `what` identifies the entry (a path, or stdin's text).
 * `memo` holds file hashes for one build pass, so files shared by every bundle are read once.
 */
const bundle = async (what: string, entry: esbuild.BuildOptions, memo: Memo = new Map()): Promise<string> => {
  const key = sha(`${esbuild.version}\n${builderHash}\n${what}`).slice(0, 32)
  const hit = cached(key, memo)
  if (hit !== undefined) return hit
  const out = await esbuild.build(options(entry))
  const code = out.outputFiles![0]!.text
  store(key, code, out.metafile, new Map()) // hashed after the build: what esbuild read is what is kept
  return code
}

export interface BuiltWorker {
  name: string
  code: string
  bytes: number
}

/** Bundles one function. */
export const buildFunction = async (spec: FunctionSpec, memo?: Memo): Promise<BuiltWorker> => {
  const code = await bundle(spec.file, { entryPoints: [join(root, spec.file)] }, memo)
  return { name: spec.name, code, bytes: Buffer.byteLength(code) }
}

/** Bundles the router worker that fronts the given functions through service bindings. */
export const buildRouter = async (served: FunctionSpec[], memo?: Memo): Promise<BuiltWorker> => {
  const specs = JSON.stringify(served.map((f) => ({ name: f.name, routes: f.routes })))
  const contents = `
import { createDispatcher } from './lib/dispatch.ts'
const dispatch = createDispatcher(${specs})
const binding = (name) => 'FN_' + name.toUpperCase().replace(/[^A-Z0-9]/g, '_')
export default {
  fetch(request, env) {
    const req = new Request(request)
    // The client address comes from the runtime, never from what the client says.
    req.headers.set('x-nexus-client-ip', request.headers.get('cf-connecting-ip') ?? '')
    return dispatch(req, (name) => { const svc = env[binding(name)]; return svc && ((r) => svc.fetch(r)) })
  },
}
`
  const stdin = { contents, resolveDir: root, sourcefile: 'router.js', loader: 'js' as const }
  const code = await bundle(contents, { stdin }, memo)
  return { name: 'router', code, bytes: Buffer.byteLength(code) }
}

/** Bundles every given function and the router, in parallel. */
export const buildAll = async (served: FunctionSpec[] = [...functions]) => {
  const memo: Memo = new Map()
  const [router, ...workers] = await Promise.all([
    buildRouter(served, memo),
    ...served.map((spec) => buildFunction(spec, memo)),
  ])
  return { router: router!, workers }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = join(root, '.build', 'workerd')
  mkdirSync(outDir, { recursive: true })
  const { router, workers } = await buildAll()
  for (const w of [router, ...workers]) {
    writeFileSync(join(outDir, `${w.name}.mjs`), w.code)
    console.log(`${w.name.padEnd(24)} ${(w.bytes / 1024).toFixed(1).padStart(8)} KiB`)
  }
}
