/** The front door shared by the hosts: routes a request to a function's fetch, or answers 404/405 in the envelope. */
import { ApiError, renderError } from './errors.ts'
import { createRouter, type RouteSpec } from './router.ts'

export type Fetcher = (request: Request) => Promise<Response> | Response

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Returns a dispatch that sends each request to `fetcherFor(name)` of the function owning its route. */
export const createDispatcher = (specs: ReadonlyArray<RouteSpec>) => {
  const match = createRouter(specs)
  return async (request: Request, fetcherFor: (name: string) => Fetcher | undefined): Promise<Response> => {
    const url = new URL(request.url)
    const found = match(request.method, url.pathname)
    const given = request.headers.get('x-request-id')
    const requestId = given && REQUEST_ID.test(given) ? given : crypto.randomUUID()
    if (found.kind === 'found') {
      const fetcher = fetcherFor(found.name)
      if (fetcher) return fetcher(request)
    }
    if (found.kind === 'method')
      return renderError(
        new ApiError(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${url.pathname}`, {
          type: 'invalid_request_error',
          headers: { allow: found.allow.join(', ') },
        }),
        requestId,
      )
    return renderError(new ApiError(404, 'NOT_FOUND', `No route for ${request.method} ${url.pathname}`), requestId)
  }
}
