/// <reference types="vite/client" />
/** /health, /health/live, /health/ready and /metrics on each runtime. */
import { describe, expect, it } from 'vitest'
import { describeRuntimes, expectEnvelope, usingRealRedis } from '../support/harness.ts'

describeRuntimes('health and metrics', (host) => {
  it('GET /health reports each check, and degraded while Ollama is down', async () => {
    const res = await host().json('GET', '/health')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-request-id')).toBeTruthy()
    expect(res.body.status).toBe('degraded') // the test Ollama URL is a closed port
    expect(res.body.checks.database).toMatchObject({ status: 'ok' })
    expect(res.body.checks.redis).toMatchObject({ status: 'ok', driver: usingRealRedis ? 'redis' : expect.any(String) })
    expect(res.body.checks.ollama.status).toBe('error')
    expect(res.body.checks.ollama.message).toMatch(/Ollama/)
  })

  it('GET /health/live and /health/ready answer 200', async () => {
    expect((await host().json('GET', '/health/live')).body).toEqual({ status: 'ok' })
    const ready = await host().json('GET', '/health/ready')
    expect(ready.status).toBe(200)
    expect(ready.body).toEqual({ status: 'ready' })
  })

  it('answers every body over the limit with a 413 the client can read, never a reset, streamed or not', async () => {
    // A client still sending when the server refuses gets the 413 only if the server reads on: ten of each.
    const big = new TextEncoder().encode(JSON.stringify({ username: 'x', password: 'y'.repeat(3 * 1024 * 1024) }))
    for (let i = 0; i < 10; i++) {
      const sized = await host().fetch('/api/v1/auth/login', { method: 'POST', body: big, headers: { 'content-type': 'application/json' } })
      expect(sized.status).toBe(413)
      expect(((await sized.json()) as { error: { code: string } }).error.code).toBe('BODY_TOO_LARGE')
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < big.length; at += 64 * 1024) controller.enqueue(big.subarray(at, at + 64 * 1024))
          controller.close()
        },
      })
      const streamed = await host().fetch('/api/v1/auth/login', {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
        duplex: 'half',
      } as RequestInit)
      expect(streamed.status).toBe(413)
      expect(((await streamed.json()) as { error: { code: string } }).error.code).toBe('BODY_TOO_LARGE')
    }
  })

  it('reads a body whole however it comes (small, large, chunked), and answers bad UTF-8 and bad JSON with 400s', async () => {
    const enc = new TextEncoder()
    const login = { username: 'nobody', password: 'not-the-password' }
    // Under 64 KiB the Node host reads the body itself; over it, and chunked, the body streams.
    const small = enc.encode(JSON.stringify(login))
    const large = enc.encode(`${' '.repeat(100 * 1024)}${JSON.stringify(login)}`)
    const chunked = (bytes: Uint8Array) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 1000) controller.enqueue(bytes.subarray(at, at + 1000))
          controller.close()
        },
      })
    const post = (body: BodyInit) =>
      host().fetch('/api/v1/auth/login', { method: 'POST', body, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit)
    const codeOf = async (res: Response) => ({ status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code })
    for (const body of [small, large, chunked(small), chunked(large)])
      expect(await codeOf(await post(body))).toEqual({ status: 401, code: 'INVALID_CREDENTIALS' })
    const badUtf8 = new Uint8Array([...small.subarray(0, 20), 0xff, 0xfe, ...small.subarray(20)])
    for (const body of [badUtf8, new Uint8Array([...large, 0xff]), chunked(badUtf8)])
      expect(await codeOf(await post(body))).toEqual({ status: 400, code: 'INVALID_ENCODING' })
    for (const body of [enc.encode('{"username":'), chunked(enc.encode(`${' '.repeat(70_000)}{`))])
      expect(await codeOf(await post(body))).toEqual({ status: 400, code: 'INVALID_JSON' })
  })

  it('GET /metrics is Prometheus text with the request counter and latency histogram', async () => {
    await host().fetch('/metrics') // the scrape itself is a request the wrapper records
    const res = await host().fetch('/metrics')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    expect(text).toMatch(/^# TYPE cortex_request_count counter$/m)
    expect(text).toMatch(/^cortex_request_count\{function="metrics",method="GET",route="\/metrics",status="200"\} [1-9]\d*$/m)
    expect(text).toMatch(/^# TYPE cortex_response_time histogram$/m)
    expect(text).toMatch(/^cortex_response_time_bucket\{function="metrics",method="GET",route="\/metrics",le="\+Inf"\} [1-9]\d*$/m)
    expect(text).toMatch(/^cortex_response_time_count\{function="metrics",method="GET",route="\/metrics"\} [1-9]\d*$/m)
    // Every sample line parses as `name{labels} value`.
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#')))
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (-?\d+(\.\d+)?(e[+-]?\d+)?|\+Inf|-Inf|NaN)$/)
  })

  it('answers an unknown route with 404 and a method that does not fit with 405, in the envelope', async () => {
    const missing = await host().json('GET', '/no/such/route')
    expectEnvelope(missing, 404, 'NOT_FOUND')
    expect(missing.body.error.type).toBe('invalid_request_error')
    const wrongMethod = await host().json('DELETE', '/health')
    expectEnvelope(wrongMethod, 405, 'METHOD_NOT_ALLOWED')
    expect(wrongMethod.headers.get('allow')).toBe('GET')
  })

  it('echoes a well-formed x-request-id and replaces a malformed one', async () => {
    const given = await host().fetch('/health/live', { headers: { 'x-request-id': 'abc-123' } })
    expect(given.headers.get('x-request-id')).toBe('abc-123')
    const bad = await host().fetch('/health/live', { headers: { 'x-request-id': 'bad id with spaces <script>' } })
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('route map', () => {
  it('every function declares exactly the routes workers.config.ts gives it', async () => {
    const { functions } = await import('../../workers.config.ts')
    const modules = import.meta.glob<{ default: { name: string; routes: { method: string; path: string }[] } }>(
      '../../functions/*.ts',
    )
    for (const spec of functions) {
      const load = modules[`../../${spec.file}`]
      expect(load, `${spec.file} exists`).toBeDefined()
      const mod = await load!()
      expect(mod.default.name).toBe(spec.name)
      const declared = mod.default.routes.map((r) => `${r.method} ${r.path}`).sort()
      const configured = spec.routes.map((r) => `${r.method} ${r.path}`).sort()
      expect(declared, spec.name).toEqual(configured)
    }
  })
})
