/** The function wrapper: error envelope for every failure, request ids, body limits, JSON validation, CORS. */
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inject } from 'vitest'
import * as z from 'zod'
import { defineFunction, HostRequestInfo, jsonBody, type AppEnv } from './app.ts'
import { createMemoryBus } from './bus/index.ts'
import { createDb, migrate, type Db } from './db/index.ts'
import { parseEnv } from './env.ts'
import { ApiError } from './errors.ts'
import { createLogger } from './log.ts'
import { Registry } from './metrics.ts'
import type { Bindings, Services } from './services.ts'

const Body = z.object({ name: z.string().min(1).max(10), count: z.number().int().optional() })
const app = new Hono<AppEnv>()
  .post('/echo', async (c) => c.json(await jsonBody(c, Body)))
  .get('/boom', () => {
    throw new Error('secret internal detail: password=hunter2')
  })
  .get('/teapot', () => {
    throw new ApiError(418, 'TEAPOT', 'I am a teapot')
  })
  .post('/dup', async (c) => {
    const { db } = c.var.services
    await db.sql`insert into ${db.t.model_aliases} (alias, target) values ('dup', 'x')`
    await db.sql`insert into ${db.t.model_aliases} (alias, target) values ('dup', 'x')`
    return c.json({})
  })
const fn = defineFunction('test', app)

let db: Db
const logs: string[] = []
let bindings: Bindings
const schema = `u_${Math.random().toString(36).slice(2, 10)}`

beforeAll(async () => {
  const config = parseEnv({ NEXUS_MAX_BODY_BYTES: '2048', NEXUS_CORS_ORIGINS: 'https://ui.example', NEXUS_DB_SCHEMA: schema })
  db = createDb(inject('databaseUrl'), { schema, max: 2 })
  await migrate(db)
  const services: Services = {
    config,
    db,
    bus: createMemoryBus(),
    log: createLogger('info', {}, (line) => logs.push(line)),
    metrics: new Registry(),
  }
  bindings = { NEXUS_SERVICES: { services } }
})
afterAll(async () => {
  await db.sql.unsafe(`drop schema if exists "${schema}" cascade`)
  await db.close()
})

const call = async (path: string, init?: RequestInit) => {
  const res = await fn.fetch(new Request(`http://local${path}`, init), bindings, { waitUntil: () => undefined })
  const text = await res.text()
  return { res, text, body: text ? JSON.parse(text) : undefined }
}
const post = (path: string, body: BodyInit, type = 'application/json') =>
  call(path, { method: 'POST', body, headers: { 'content-type': type } })

const envelope = (r: Awaited<ReturnType<typeof call>>, status: number, code: string) => {
  expect(r.res.status).toBe(status)
  expect(r.body.error).toMatchObject({ code, message: expect.any(String), type: expect.any(String) })
  expect(r.body.error).toHaveProperty('param')
  expect(r.res.headers.get('x-request-id')).toBeTruthy()
}

describe('defineFunction', () => {
  it('passes valid JSON through', async () => {
    const r = await post('/echo', JSON.stringify({ name: 'ok', count: 2 }))
    expect(r.res.status).toBe(200)
    expect(r.body).toEqual({ name: 'ok', count: 2 })
    expect(r.res.headers.get('x-request-id')).toBeTruthy()
  })

  it('answers malformed JSON with 400 INVALID_JSON', async () => {
    envelope(await post('/echo', '{"name": '), 400, 'INVALID_JSON')
  })

  it('answers a non-JSON content type with 415', async () => {
    const r = await post('/echo', 'name=x', 'application/x-www-form-urlencoded')
    envelope(r, 415, 'UNSUPPORTED_MEDIA_TYPE')
    expect(r.body.error.type).toBe('invalid_request_error')
  })

  it('answers a schema failure with 400 naming the field', async () => {
    const r = await post('/echo', JSON.stringify({ name: 'far too long a name' }))
    envelope(r, 400, 'VALIDATION_FAILED')
    expect(r.body.error.param).toBe('name')
    const wrongType = await post('/echo', JSON.stringify({ name: 'a', count: 'two' }))
    expect(wrongType.body.error.param).toBe('count')
    const notObject = await post('/echo', '[1,2]')
    envelope(notObject, 400, 'VALIDATION_FAILED')
  })

  it('answers a body over the limit with 413, by Content-Length or by counting a streamed body', async () => {
    envelope(await post('/echo', JSON.stringify({ name: 'x'.repeat(5000) })), 413, 'BODY_TOO_LARGE')
    const chunks = new ReadableStream<Uint8Array>({
      start(ctrl) {
        for (let i = 0; i < 10; i++) ctrl.enqueue(new TextEncoder().encode('x'.repeat(500)))
        ctrl.close()
      },
    })
    const r = await call('/echo', {
      method: 'POST',
      body: chunks,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit)
    envelope(r, 413, 'BODY_TOO_LARGE')
  })

  it('answers invalid UTF-8 with 400', async () => {
    envelope(await post('/echo', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, 'INVALID_ENCODING')
  })

  it('hides an unexpected error behind a generic 500 and logs it with the request id, scrubbed', async () => {
    const r = await call('/boom', { headers: { 'x-request-id': 'req-boom-1' } })
    envelope(r, 500, 'INTERNAL')
    expect(r.body.error.type).toBe('api_error')
    expect(r.text).not.toMatch(/secret internal detail|hunter2/)
    const line = logs.find((l) => l.includes('req-boom-1'))
    expect(line).toBeDefined()
    expect(JSON.parse(line!)).toMatchObject({ level: 'error', requestId: 'req-boom-1' })
  })

  it('renders an ApiError with its own status and code', async () => {
    envelope(await call('/teapot'), 418, 'TEAPOT')
  })

  it('maps a unique violation from PostgreSQL to 409', async () => {
    envelope(await call('/dup', { method: 'POST' }), 409, 'CONFLICT')
  })

  it('answers an unknown path with 404 in the envelope', async () => {
    envelope(await call('/nope'), 404, 'NOT_FOUND')
  })

  it('answers CORS preflights for allowed origins only', async () => {
    const ok = await fn.fetch(
      new Request('http://local/echo', {
        method: 'OPTIONS',
        headers: { origin: 'https://ui.example', 'access-control-request-method': 'POST' },
      }),
      bindings,
      { waitUntil: () => undefined },
    )
    expect(ok.status).toBe(204)
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://ui.example')
    const other = await post('/echo', JSON.stringify({ name: 'a' }))
    expect(other.res.headers.get('access-control-allow-origin')).toBeNull()
    const fromUi = await call('/echo', {
      method: 'POST',
      body: JSON.stringify({ name: 'a' }),
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
    })
    expect(fromUi.res.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('lists its routes for the route-map check', () => {
    expect(fn.routes).toEqual(
      expect.arrayContaining([
        { method: 'POST', path: '/echo' },
        { method: 'GET', path: '/boom' },
      ]),
    )
  })
})

describe('HostRequestInfo (what the Node host hands functions)', () => {
  const left = () => new DOMException('The client went away', 'AbortError')

  it('keeps the body it was given', () => {
    const body = new TextEncoder().encode('{"a":1}')
    expect(new HostRequestInfo(body).body).toBe(body)
    expect(new HostRequestInfo().body).toBeUndefined()
  })

  it('aborts a signal asked for before the client left, when it leaves', () => {
    const info = new HostRequestInfo()
    const signal = info.signal
    expect(info.signal).toBe(signal) // one signal per request
    expect(signal.aborted).toBe(false)
    const reason = left()
    info.clientLeft(reason)
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBe(reason)
  })

  it('makes a signal asked for after the client left already aborted', () => {
    const info = new HostRequestInfo()
    const reason = left()
    info.clientLeft(reason)
    expect(info.signal.aborted).toBe(true)
    expect(info.signal.reason).toBe(reason)
  })
})
