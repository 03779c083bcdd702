/** Matches a request to a function by the routes in workers.config.ts; shared by every host. */

export interface RouteSpec {
  name: string
  routes: ReadonlyArray<{ method: string; path: string }>
}

export type RouteMatch = { kind: 'found'; name: string } | { kind: 'method'; allow: string[] } | { kind: 'none' }

interface Compiled {
  name: string
  method: string
  regex: RegExp
  params: number
}

const compile = (path: string): { regex: RegExp; params: number } => {
  let params = 0
  const body = path
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        params++
        return '[^/]+'
      }
      if (seg === '*') {
        params += 100 // wildcards rank after every named route
        return '.*'
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    })
    .join('/')
  return { regex: new RegExp(`^${body}/?$`), params }
}

/** Builds a matcher. Static routes win over parameterized ones, whatever the declaration order. */
export const createRouter = (specs: ReadonlyArray<RouteSpec>) => {
  const compiled: Compiled[] = specs
    .flatMap((s) => s.routes.map((r) => ({ name: s.name, method: r.method, ...compile(r.path) })))
    .sort((a, b) => a.params - b.params)
  return (method: string, pathname: string): RouteMatch => {
    const m = method === 'HEAD' ? 'GET' : method
    const allow = new Set<string>()
    let first: string | undefined
    for (const r of compiled) {
      if (!r.regex.test(pathname)) continue
      if (r.method === m) return { kind: 'found', name: r.name }
      first ??= r.name
      allow.add(r.method)
    }
    // A CORS preflight goes to the function that owns the path; it answers for its own routes.
    if (m === 'OPTIONS' && first) return { kind: 'found', name: first }
    if (allow.size > 0) return { kind: 'method', allow: [...allow].sort() }
    return { kind: 'none' }
  }
}
