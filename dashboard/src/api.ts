/** The dashboard's client of the public NEXUS API: Bearer auth, the error envelope, and the session ending on a 401. */

export class ApiFailure extends Error {
  readonly status: number
  readonly code: string
  readonly retryAfter: number | undefined
  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message)
    this.name = 'ApiFailure'
    this.status = status
    this.code = code
    this.retryAfter = retryAfter
  }
}

export interface RequestOptions {
  /** Send the session's token (default true). A 401 then ends the session. */
  auth?: boolean
  /** Statuses whose JSON body is returned instead of thrown (e.g. 503 from /health). */
  accept?: number[]
  timeoutMs?: number
}

export interface Api {
  /** '' for the page's own origin, else the configured API base (no trailing slash). */
  readonly base: string
  /** ws:// or wss:// URL of a path on the API. */
  wsUrl(path: string): string
  request<T>(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<T>
  get<T>(path: string, options?: RequestOptions): Promise<T>
  post<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T>
  del<T>(path: string): Promise<T>
}

interface Envelope {
  error?: { message?: unknown; code?: unknown }
}

const failureFrom = async (res: Response): Promise<ApiFailure> => {
  let message = `The server answered ${res.status}`
  let code = `HTTP_${res.status}`
  try {
    const body = (await res.json()) as Envelope
    if (typeof body.error?.message === 'string') message = body.error.message
    if (typeof body.error?.code === 'string') code = body.error.code
  } catch {
    // not the envelope (a proxy's page, say): keep the status line
  }
  const retry = Number(res.headers.get('retry-after'))
  return new ApiFailure(res.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : undefined)
}

/**
 * A client for `base`. `token()` gives the current access token; `onUnauthorized` hears every 401 of an
 * authenticated call (the session is over: expired, revoked or invalid).
 */
export const createApi = (base: string, token: () => string | undefined, onUnauthorized: (failure: ApiFailure) => void): Api => {
  const root = base.replace(/\/+$/, '')
  const request = async <T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> => {
    const headers: Record<string, string> = { accept: 'application/json' }
    const auth = options.auth ?? true
    const bearer = auth ? token() : undefined
    if (bearer) headers.authorization = `Bearer ${bearer}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    try {
      res = await fetch(root + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
      })
    } catch (err) {
      const timedOut = err instanceof DOMException && err.name === 'TimeoutError'
      throw new ApiFailure(0, timedOut ? 'TIMEOUT' : 'NETWORK', timedOut ? 'The server did not answer in time' : 'The server cannot be reached')
    }
    if (res.ok || options.accept?.includes(res.status)) {
      if (res.status === 204) return undefined as T
      const text = await res.text()
      return (text ? JSON.parse(text) : undefined) as T
    }
    const failure = await failureFrom(res)
    if (res.status === 401 && auth && bearer) onUnauthorized(failure)
    throw failure
  }
  return {
    base: root,
    wsUrl(path) {
      const http = root || location.origin
      return http.replace(/^http/, 'ws') + path
    },
    request,
    get: (path, options) => request('GET', path, undefined, options),
    post: (path, body, options) => request('POST', path, body, options),
    del: (path) => request('DELETE', path),
  }
}
