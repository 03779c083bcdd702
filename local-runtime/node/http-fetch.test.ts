/** The Node host's keep-alive fetch to Ollama, against a real HTTP server on loopback. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createNodeHttpFetch } from './http-fetch.ts'

type Handler = (req: IncomingMessage, res: ServerResponse, body: string, socketRequests: number) => void
let handler: Handler
let server: Server
let base: string
const perSocket = new WeakMap<Socket, number>()
const closed: string[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1
    perSocket.set(req.socket, n)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString(), n))
    res.on('close', () => closed.push(req.url ?? ''))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

const client = createNodeHttpFetch()
afterEach(() => {
  closed.length = 0
})
afterAll(() => client.close())

const until = async (check: () => boolean) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(check()).toBe(true)
}

describe('node:http fetch', () => {
  it('sends the method, headers and body, and returns the status, headers and body', async () => {
    let seen: { method?: string; headers?: IncomingMessage['headers']; body?: string } = {}
    handler = (req, res, body) => {
      seen = { method: req.method, headers: req.headers, body }
      res.writeHead(201, 'Made It', { 'content-type': 'application/json', 'x-two': ['a', 'b'] })
      res.end('{"ok":true,"é":"ü"}')
    }
    const res = await client.fetch(`${base}/api/chat?x=1`, {
      method: 'post',
      headers: { 'Content-Type': 'application/json', 'X-Custom': 'v', 'x-skip': undefined as unknown as string },
      body: JSON.stringify({ text: 'héllo' }),
    })
    expect(seen.method).toBe('POST')
    expect(seen.headers).toMatchObject({ 'content-type': 'application/json', 'x-custom': 'v', 'content-length': '17' })
    expect(seen.headers).not.toHaveProperty('x-skip')
    expect(seen.headers).not.toHaveProperty('accept-encoding')
    expect(seen.body).toBe('{"text":"héllo"}')
    expect(res.status).toBe(201)
    expect(res.statusText).toBe('Made It')
    expect(res.ok).toBe(true)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(res.headers.get('x-two')).toBe('a, b')
    expect(await res.json()).toEqual({ ok: true, é: 'ü' })
  })

  it('takes Headers, header pairs and byte bodies', async () => {
    const seen: Array<{ h: string | undefined; body: string }> = []
    handler = (req, res, body) => {
      seen.push({ h: req.headers['x-h'] as string | undefined, body })
      res.end()
    }
    await client.fetch(`${base}/a`, { method: 'POST', headers: new Headers({ 'x-h': '1' }), body: new TextEncoder().encode('bytes') })
    await client.fetch(new URL(`${base}/b`), { method: 'PUT', headers: [['X-H', '2']], body: new TextEncoder().encode('buf').buffer })
    expect(seen).toEqual([
      { h: '1', body: 'bytes' },
      { h: '2', body: 'buf' },
    ])
  })

  it('streams the body as it arrives', async () => {
    let finish!: () => void
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write('{"n":1}\n')
      finish = () => res.end('{"n":2}\n')
    }
    const res = await client.fetch(`${base}/stream`, { method: 'POST', body: '{}' })
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toBe('{"n":1}\n')
    finish()
    const second = await reader.read()
    expect(new TextDecoder().decode(second.value)).toBe('{"n":2}\n')
    expect((await reader.read()).done).toBe(true)
  })

  it('never follows a redirect', async () => {
    const paths: string[] = []
    handler = (req, res) => {
      paths.push(req.url!)
      if (req.url === '/from') res.writeHead(302, { location: '/to' }).end()
      else res.end('followed')
    }
    const res = await client.fetch(`${base}/from`)
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('/to')
    expect(paths).toEqual(['/from'])
  })

  it('gives a null body for 204 and HEAD', async () => {
    handler = (_req, res) => res.writeHead(204).end()
    expect((await client.fetch(`${base}/none`)).body).toBeNull()
    handler = (_req, res) => res.writeHead(200, { 'content-length': '5' }).end()
    expect((await client.fetch(`${base}/head`, { method: 'HEAD' })).body).toBeNull()
  })

  it('rejects as fetch does when nothing listens', async () => {
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((r) => probe.close(() => r()))
    const err = await client.fetch(`http://127.0.0.1:${port}/api/tags`).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TypeError)
    expect((err as TypeError).message).toBe('fetch failed')
    expect(((err as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED')
  })

  it('rejects with the reason when aborted before the answer, and closes the connection', async () => {
    let arrived = false
    handler = () => void (arrived = true) // never answers
    const controller = new AbortController()
    const pending = client.fetch(`${base}/slow`, { method: 'POST', body: '{}', signal: controller.signal })
    await until(() => arrived)
    controller.abort()
    const err = await pending.catch((e: unknown) => e)
    expect((err as Error).name).toBe('AbortError')
    await until(() => closed.includes('/slow'))
  })

  it('rejects at once for a signal already aborted', async () => {
    const err = await client.fetch(`${base}/x`, { signal: AbortSignal.abort(new Error('gone')) }).catch((e: unknown) => e)
    expect((err as Error).message).toBe('gone')
  })

  it('errors the body when aborted mid-answer, and closes the connection', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write('{"n":1}\n')
    }
    const controller = new AbortController()
    const res = await client.fetch(`${base}/mid`, { method: 'POST', body: '{}', signal: controller.signal })
    const reader = res.body!.getReader()
    await reader.read()
    controller.abort()
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' })
    await until(() => closed.includes('/mid'))
  })

  it('errors the body when the connection is lost mid-answer', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write('{"n":1}\n', () => setTimeout(() => res.socket?.destroy(), 20))
    }
    const res = await client.fetch(`${base}/lost`, { method: 'POST', body: '{}' })
    await expect(res.text()).rejects.toMatchObject({ name: 'TypeError', message: 'terminated' })
  })

  it('closes the connection when the body is cancelled', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write('{"n":1}\n')
    }
    const res = await client.fetch(`${base}/cancel`, { method: 'POST', body: '{}' })
    await res.body!.cancel()
    await until(() => closed.includes('/cancel'))
  })

  it('keeps the connection alive between requests', async () => {
    const own = createNodeHttpFetch()
    const seenSockets = new Set<unknown>()
    handler = (req, res) => {
      seenSockets.add(req.socket)
      res.end('ok')
    }
    for (let i = 0; i < 5; i++) expect(await (await own.fetch(`${base}/ka`, { method: 'POST', body: '{}' })).text()).toBe('ok')
    expect(seenSockets.size).toBe(1)
    own.close()
  })

  it('retries once on a new connection when a kept-alive one was closed under the request', async () => {
    const own = createNodeHttpFetch()
    const seenSockets = new Set<unknown>()
    handler = (req, res, _body, n) => {
      seenSockets.add(req.socket)
      // The server drops a kept-alive connection as the next request arrives on it.
      if (n > 1) req.socket.destroy()
      else res.end('ok')
    }
    expect(await (await own.fetch(`${base}/r1`, { method: 'POST', body: '{}' })).text()).toBe('ok')
    expect(await (await own.fetch(`${base}/r2`, { method: 'POST', body: '{}' })).text()).toBe('ok')
    expect(seenSockets.size).toBe(2)
    own.close()
  })

  it('does not retry on a fresh connection', async () => {
    const own = createNodeHttpFetch()
    let attempts = 0
    handler = (req) => {
      attempts++
      req.socket.destroy()
    }
    const err = await own.fetch(`${base}/dead`, { method: 'POST', body: '{}' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TypeError)
    expect(attempts).toBe(1)
    own.close()
  })

  it('hands what it does not handle (a Request, a stream body) to the runtime fetch', async () => {
    handler = (req, res, body) => res.end(`${req.method} ${body}`)
    const viaRequest = await client.fetch(new Request(`${base}/req`, { method: 'POST', body: 'r' }))
    expect(await viaRequest.text()).toBe('POST r')
    const stream = new Blob(['s']).stream()
    const viaStream = await client.fetch(`${base}/stream-body`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit)
    expect(await viaStream.text()).toBe('POST s')
  })
})
