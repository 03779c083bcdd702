/**
 * Bundles each function of workers.config.ts (and the router that fronts them) into one ES module
 * for workerd, with esbuild. `npm run build:workerd` writes them to .build/workerd/.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
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
  logLevel: 'warning',
  absWorkingDir: root,
})

export interface BuiltWorker {
  name: string
  code: string
  bytes: number
}

/** Bundles one function. */
export const buildFunction = async (spec: FunctionSpec): Promise<BuiltWorker> => {
  const out = await esbuild.build(options({ entryPoints: [join(root, spec.file)] }))
  const code = out.outputFiles![0]!.text
  return { name: spec.name, code, bytes: Buffer.byteLength(code) }
}

/** Bundles the router worker that fronts the given functions through service bindings. */
export const buildRouter = async (served: FunctionSpec[]): Promise<BuiltWorker> => {
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
  const out = await esbuild.build(
    options({ stdin: { contents, resolveDir: root, sourcefile: 'router.js', loader: 'js' } }),
  )
  const code = out.outputFiles![0]!.text
  return { name: 'router', code, bytes: Buffer.byteLength(code) }
}

/** Bundles every given function and the router, in parallel. */
export const buildAll = async (served: FunctionSpec[] = [...functions]) => {
  const [router, ...workers] = await Promise.all([buildRouter(served), ...served.map(buildFunction)])
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
