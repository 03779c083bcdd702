/**
 * The OpenAPI description cannot drift: it is valid OpenAPI 3.1, names every route of workers.config.ts,
 * each schema it names is the very object the function validates with (read from the function's source),
 * its success statuses are the ones the handlers answer with, its security matches what a request
 * without a token gets, and the served /openapi.json is the built document.
 */
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Validator } from '@seriousme/openapi-schema-validator'
import ts from 'typescript'
import { afterAll, describe, expect, it } from 'vitest'
import { functions, type FunctionSpec } from '../../workers.config.ts'
import { buildOpenApi, openApiPath, requiresBearer, routeDocs, routeKey, type RouteDoc } from '../../lib/openapi.ts'
import { describeRuntimes, startTestHost, type TestHost } from '../support/harness.ts'

const root = join(import.meta.dirname, '..', '..')
const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete'])
type Role = 'body' | 'query' | 'params'

interface Found {
  role: Role
  identifier: string
  /** Route keys (`METHOD /path/{p}`) the validation belongs to. */
  routes: string[]
  line: number
}

/** A route registration in a Hono chain: `.post('/path', ...handlers)`. */
const routeCall = (node: ts.Node): { key: string; call: ts.CallExpression } | undefined => {
  if (!ts.isCallExpression(node) || !ts.isPropertyAccessExpression(node.expression)) return undefined
  const method = node.expression.name.text
  const first = node.arguments[0]
  if (!METHODS.has(method) || !first || !ts.isStringLiteral(first)) return undefined
  return { key: routeKey(method.toUpperCase(), first.text), call: node }
}

/** Reads a function file: its validation calls and the statuses each route handler answers with. */
const analyse = (spec: FunctionSpec) => {
  const file = join(root, spec.file)
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true)
  const all = spec.routes.map((r) => routeKey(r.method, r.path))
  const routes: Array<{ key: string; call: ts.CallExpression }> = []
  const calls: ts.CallExpression[] = []
  const visit = (node: ts.Node) => {
    const rc = routeCall(node)
    if (rc) routes.push(rc)
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && ['jsonBody', 'parseWith'].includes(node.expression.text))
      calls.push(node)
    ts.forEachChild(node, visit)
  }
  visit(source)

  // The routes a node serves: the registration it sits in, or those that pass the helper it sits in.
  const routesOf = (node: ts.Node): string[] => {
    for (let n: ts.Node | undefined = node.parent; n; n = n.parent) {
      const rc = routes.find((r) => r.call === n)
      if (rc) return [rc.key]
      if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name)) {
        const name = n.name.text
        const users = routes.filter((r) => r.call.arguments.some((a) => ts.isIdentifier(a) && a.text === name))
        if (users.length) return users.map((r) => r.key)
      }
    }
    return all
  }

  const found: Found[] = []
  for (const call of calls) {
    const fn = (call.expression as ts.Identifier).text
    const [a, b] = call.arguments
    let role: Role | undefined
    let schema: ts.Expression | undefined
    if (fn === 'jsonBody') {
      role = 'body'
      schema = b
    } else {
      schema = a
      const what = b?.getText(source).replace(/\s/g, '')
      role = what === 'c.req.query()' ? 'query' : what === 'c.req.param()' ? 'params' : undefined
    }
    if (!role || !schema || !ts.isIdentifier(schema)) continue
    found.push({ role, identifier: schema.text, routes: routesOf(call), line: source.getLineAndCharacterOfPosition(call.getStart()).line + 1 })
  }

  // Statuses: the second argument of c.json / c.body in each route's own handlers (numeric literals in it).
  const statuses = new Map<string, Set<number> | undefined>()
  for (const r of routes) {
    const set = new Set<number>()
    let answers = 0
    const scan = (node: ts.Node) => {
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        ts.isIdentifier(node.expression.expression) &&
        node.expression.expression.text === 'c' &&
        ['json', 'body'].includes(node.expression.name.text)
      ) {
        answers++
        const status = node.arguments[1]
        if (!status) set.add(200)
        else {
          const lits = (n: ts.Node) => {
            if (ts.isNumericLiteral(n)) set.add(Number(n.text))
            ts.forEachChild(n, lits)
          }
          lits(status)
        }
      }
      ts.forEachChild(node, scan)
    }
    r.call.arguments.slice(1).forEach(scan)
    statuses.set(r.key, answers ? set : undefined) // undefined: the handler delegates; nothing to compare
  }

  // Where an identifier's value comes from: an export of this file, or a named import.
  const origin = (identifier: string): { module: string; name: string } | { error: string } => {
    for (const st of source.statements) {
      if (ts.isImportDeclaration(st) && st.importClause?.namedBindings && ts.isNamedImports(st.importClause.namedBindings))
        for (const el of st.importClause.namedBindings.elements)
          if (el.name.text === identifier)
            return { module: resolve(dirname(file), (st.moduleSpecifier as ts.StringLiteral).text), name: (el.propertyName ?? el.name).text }
      if (ts.isVariableStatement(st))
        for (const d of st.declarationList.declarations)
          if (ts.isIdentifier(d.name) && d.name.text === identifier) {
            const exported = st.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
            return exported ? { module: file, name: identifier } : { error: `${spec.file}: ${identifier} is not exported, so the description cannot name it` }
          }
    }
    return { error: `${spec.file}: cannot find where ${identifier} comes from` }
  }
  return { found, statuses, origin }
}

describe('the OpenAPI description', () => {
  const doc = buildOpenApi()

  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator()
    const result = await validator.validate(doc as never)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it('has every route of workers.config.ts, with its function and group, and nothing else', () => {
    const configured = functions.flatMap((f) => f.routes.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)} ${f.name} ${f.group}`)).sort()
    const described = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.entries(ops).map(([m, op]) => `${m} ${path} ${op['x-nexus-function']} ${op['x-nexus-group']}`))
      .sort()
    expect(described).toEqual(configured)
    // And the route table names no route that does not exist.
    const keys = new Set(functions.flatMap((f) => f.routes.map((r) => routeKey(r.method, r.path))))
    expect(Object.keys(routeDocs).filter((k) => !keys.has(k))).toEqual([])
  })

  it('names, for each route, the very schema objects the function validates with', async () => {
    const problems: string[] = []
    for (const spec of functions) {
      const { found, origin } = analyse(spec)
      const keys = spec.routes.map((r) => routeKey(r.method, r.path))
      for (const key of keys) {
        const doc: RouteDoc = routeDocs[key] ?? {}
        for (const role of ['body', 'query', 'params'] as const) {
          const used = found.filter((f) => f.role === role && f.routes.includes(key))
          const described = doc[role]
          if (used.length === 0) {
            if (described) problems.push(`${key}: the description has a ${role} schema; ${spec.file} validates none`)
            continue
          }
          if (!described) {
            problems.push(`${key}: ${spec.file}:${used[0]!.line} validates the ${role} with ${used[0]!.identifier}; the description has none`)
            continue
          }
          for (const u of used) {
            const from = origin(u.identifier)
            if ('error' in from) {
              problems.push(from.error)
              continue
            }
            const mod = (await import(pathToFileURL(from.module).href)) as Record<string, unknown>
            if (mod[from.name] !== described)
              problems.push(`${key}: the ${role} schema described is not ${u.identifier} (${spec.file}:${u.line})`)
          }
        }
      }
    }
    expect(problems).toEqual([])
  })

  it('gives each route the success statuses its handlers answer with', () => {
    const problems: string[] = []
    for (const spec of functions) {
      const { statuses } = analyse(spec)
      for (const [key, set] of statuses) {
        if (!set) continue
        const documented = [...(routeDocs[key]?.ok ?? [200])].sort()
        const answered = [...set].sort()
        if (JSON.stringify(documented) !== JSON.stringify(answered)) problems.push(`${key}: described ${documented}, answers ${answered}`)
      }
    }
    expect(problems).toEqual([])
  })

  it('refuses a function whose schema is not exported (the analysis is not blind)', () => {
    const fake: FunctionSpec = { ...functions.find((f) => f.name === 'auth-login')!, file: 'test/deploy/fixtures/unexported-schema.ts' }
    const { found, origin } = analyse(fake)
    expect(found.map((f) => [f.role, f.identifier])).toEqual([['body', 'Hidden']])
    expect(origin('Hidden')).toEqual({ error: expect.stringContaining('Hidden is not exported') })
  })
})

describeRuntimes(
  'GET /openapi.json',
  (host) => {
    it('serves the built description as JSON, readable from any origin', async () => {
      const res = await host().fetch('/openapi.json')
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      expect(res.headers.get('access-control-allow-origin')).toBe('*')
      expect(await res.json()).toEqual(JSON.parse(JSON.stringify(buildOpenApi())))
    })
  },
  // On workerd the openapi worker bundles every function module's schemas: it is served alone here.
  { functions: ['openapi'] },
)

// What a request without a token gets is the functions' own behaviour, the same on both hosts (their
// auth suites run per runtime): checked once, on Node, for every route.
describe('the description\'s security', () => {
  let host: TestHost | undefined
  afterAll(async () => host?.close())
  it('marks exactly the routes that refuse a request without a token as needing one', { timeout: 60_000 }, async () => {
    host = await startTestHost('node', { groups: ['auth', 'cortex', 'gateway', 'ops'] })
    const wrong: string[] = []
    for (const spec of functions) {
      if (spec.name === 'dashboard' || spec.name === 'auth-verify') continue
      for (const route of spec.routes) {
        const path = route.path.replace(/:[A-Za-z_]+/g, (p) => (p === ':id' ? '00000000-0000-4000-8000-000000000000' : 'x'))
        const res = await host.fetch(path, { method: route.method })
        await res.body?.cancel()
        if ((res.status === 401) !== requiresBearer(spec)) wrong.push(`${route.method} ${route.path}: ${res.status}`)
      }
    }
    expect(wrong).toEqual([])
  })
})
