/** The one error type of NEXUS and the one renderer of the contract's error envelope. */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'rate_limit_error'
  | 'api_error'

/** Stable error codes. Published codes never change; add, never rename. */
export type ErrorCode =
  | 'INVALID_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BODY_TOO_LARGE'
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'USER_EXISTS'
  | 'UNAUTHORIZED'
  | 'invalid_api_key'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REVOKED'
  | 'INVALID_CREDENTIALS'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'LOGIN_LOCKED'
  | 'BUS_UNAVAILABLE'
  | 'model_not_found'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_ERROR'
  | 'DATABASE_UNAVAILABLE'
  | 'NOT_SUPPORTED'
  | 'INTERNAL'
  | (string & {})

const typeByStatus = (status: number): ErrorType => {
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status === 429) return 'rate_limit_error'
  if (status >= 400 && status < 500) return 'invalid_request_error'
  return 'api_error'
}

export interface ApiErrorOptions {
  param?: string | null
  type?: ErrorType
  headers?: Record<string, string>
  cause?: unknown
}

/** Thrown anywhere; rendered once, by {@link renderError}, into the contract's envelope. */
export class ApiError extends Error {
  readonly status: number
  readonly code: ErrorCode
  readonly type: ErrorType
  readonly param: string | null
  readonly headers: Record<string, string>

  constructor(status: number, code: ErrorCode, message: string, options: ApiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.type = options.type ?? typeByStatus(status)
    this.param = options.param ?? null
    this.headers = options.headers ?? {}
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } }
  }
}

export const badRequest = (message: string, param?: string) =>
  new ApiError(400, 'VALIDATION_FAILED', message, { param: param ?? null })
export const notFound = (what: string, code: ErrorCode = 'NOT_FOUND') => new ApiError(404, code, `${what} not found`)
export const conflict = (message: string, code: ErrorCode = 'CONFLICT') => new ApiError(409, code, message)
export const unauthorized = (message = 'Authentication required', code: ErrorCode = 'UNAUTHORIZED') =>
  new ApiError(401, code, message, { headers: { 'www-authenticate': 'Bearer' } })
export const forbidden = (message = 'You do not have permission to do this') => new ApiError(403, 'FORBIDDEN', message)
export const rateLimited = (retryAfterSeconds: number, message = 'Too many requests') =>
  new ApiError(429, 'RATE_LIMITED', message, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
  })
export const unavailable = (message: string, code: ErrorCode = 'UPSTREAM_UNAVAILABLE') => new ApiError(503, code, message)

/** Maps a PostgreSQL error (postgres.js `PostgresError`) to an ApiError where the client caused it. */
const fromPostgres = (err: unknown): ApiError | undefined => {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined
  const code = (err as { code?: unknown }).code
  if (typeof code !== 'string') return undefined
  if (code === '23505') return conflict('A record with the same key already exists')
  if (code === '22P02' || code === '22003' || code === '22001') return badRequest('A value is out of range or malformed')
  if (['ECONNREFUSED', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', '57P01', '57P03'].includes(code))
    return unavailable('The database is unreachable', 'DATABASE_UNAVAILABLE')
  return undefined
}

/** Normalizes anything thrown into an ApiError; unknown errors become a generic 500. */
export const toApiError = (err: unknown): ApiError => {
  if (err instanceof ApiError) return err
  const pg = fromPostgres(err)
  if (pg) return pg
  return new ApiError(500, 'INTERNAL', 'Internal server error', { cause: err })
}

/** Renders an error as the contract's JSON envelope, with `x-request-id`. */
export const renderError = (err: ApiError, requestId: string, extraHeaders?: HeadersInit): Response => {
  const headers = new Headers(extraHeaders)
  headers.set('content-type', 'application/json; charset=utf-8')
  headers.set('x-request-id', requestId)
  headers.set('cache-control', 'no-store')
  for (const [k, v] of Object.entries(err.headers)) headers.set(k, v)
  return new Response(JSON.stringify(err.toJSON()), { status: err.status, headers })
}
