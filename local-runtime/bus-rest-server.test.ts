/** The bus REST server on its own: auth, bad input, limits, wire compatibility with @upstash/redis, and shutdown. */
import { randomUUID } from 'node:crypto'
import { request } from 'node:http'
import { Redis as UpstashRedis } from '@upstash/redis'
import Redis from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { INCR_SCRIPT } from '../lib/bus/types.ts'
import { startBusRestServer, type BusRestBackend, type BusRestServer } from './bus-rest-server.ts'

const redisUrl = process.env.REDIS_URL
const backends: [string, BusRestBackend | null][] = [
  ['memory', { kind: 'memory' }],
  ['redis', redisUrl ? { kind: 'redis', url: redisUrl } : null],
]

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Deletes what the suite left in the shared Redis under its prefix. */
const dropPrefix = async (url: string, prefix: string) => {
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await admin.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    admin.disconnect()
  }
}

for (const [label, backend] of backends) {
  describe.skipIf(!backend)(`bus REST server (${label} backend)`, () => {
    let server: BusRestServer
    const prefix = `nexus-rest-test:${randomUUID()}:`
    const key = (name: string) => `${prefix}${name}`

    beforeAll(async () => {
      server = await startBusRestServer({ backend: backend as BusRestBackend })
    })
    afterAll(async () => {
      await server.close()
      if (backend?.kind === 'redis') await dropPrefix(backend.url, prefix)
    })

    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json', ...headers },
        body,
      })
    const command = async (cmd: unknown[], headers?: Record<string, string>) => {
      const res = await post('/', JSON.stringify(cmd), headers)
      return { status: res.status, body: (await res.json()) as { result?: unknown; error?: string } }
    }
    /** The server still answers a plain command: none of the failures above took it down. */
    const stillServing = async () => expect(await command(['PING'])).toEqual({ status: 200, body: { result: 'PONG' } })

    describe('security', () => {
      it('refuses requests without the token, or with a wrong one, with 401', async () => {
        for (const authorization of [undefined, 'Bearer wrong', `Basic ${server.token}`, 'Bearer', `Bearer ${server.token}x`]) {
          const res = await fetch(`${server.url}/`, {
            method: 'POST',
            headers: authorization ? { Authorization: authorization } : {},
            body: '["PING"]',
          })
          expect(res.status).toBe(401)
          expect(await res.json()).toEqual({ error: 'Unauthorized' })
        }
        const sse = await fetch(`${server.url}/subscribe/ch`, { method: 'POST', body: '[]' })
        expect(sse.status).toBe(401)
        await stillServing()
      })

      it('binds to loopback and generates a long random token', () => {
        expect(new URL(server.url).hostname).toBe('127.0.0.1')
        expect(server.token.length).toBeGreaterThanOrEqual(40)
      })
    })

    describe('errors', () => {
      it('answers malformed JSON and malformed commands with 400 and an error', async () => {
        for (const body of ['{not json', '', '{"a":1}', '[]', '[{"a":1}]', '[null]', '["GET", ["nested"]]', '[""]']) {
          const res = await post('/', body)
          expect(res.status, body).toBe(400)
          expect(typeof ((await res.json()) as { error?: unknown }).error).toBe('string')
        }
        for (const body of ['{not json', '[]', '["PING"]', '[["PING"], "PING"]']) {
          expect((await post('/pipeline', body)).status, body).toBe(400)
          expect((await post('/multi-exec', body)).status, body).toBe(400)
        }
        await stillServing()
      })

      it('refuses bodies over 1 MiB with 413, declared or streamed', async () => {
        const big = JSON.stringify(['SET', key('big'), 'x'.repeat(1024 * 1024)])
        expect((await post('/', big)).status).toBe(413)
        // No Content-Length: the limit must hold while the body streams in.
        const streamed = await new Promise<number>((resolve, reject) => {
          const { hostname, port } = new URL(server.url)
          const req = request(
            { hostname, port, method: 'POST', path: '/', headers: { Authorization: `Bearer ${server.token}` } },
            (res) => {
              res.resume()
              resolve(res.statusCode ?? 0)
            },
          )
          req.on('error', reject)
          const chunk = 'x'.repeat(64 * 1024)
          let sent = 0
          const pump = () => {
            while (sent < 40) {
              sent++
              if (!req.write(chunk)) return void req.once('drain', pump)
            }
            req.end()
          }
          pump()
        })
        expect(streamed).toBe(413)
        expect(await command(['GET', key('big')])).toEqual({ status: 200, body: { result: null } })
        await stillServing()
      })

      it('replies to unknown and refused commands with an error, and keeps serving', async () => {
        const unknown = await command(['NOSUCHCOMMAND', 'x'])
        expect(unknown.status).toBe(400)
        expect(unknown.body.error).toMatch(/unknown command/i)
        const subscribe = await command(['SUBSCRIBE', 'ch'])
        expect(subscribe.status).toBe(400)
        expect(subscribe.body.error).toMatch(/^ERR/)
        const wrongType = await command(['INCRBY', key('n'), 'abc'])
        expect(wrongType.status).toBe(400)
        expect(wrongType.body.error).toBe('ERR value is not an integer or out of range')
        const pipeline = await post('/pipeline', JSON.stringify([['PING'], ['NOSUCHCOMMAND'], ['PING', 'hi']]))
        expect(pipeline.status).toBe(200)
        const items = (await pipeline.json()) as { result?: unknown; error?: string }[]
        expect(items[0]).toEqual({ result: 'PONG' })
        expect(items[1]?.error).toMatch(/unknown command/i)
        expect(items[2]).toEqual({ result: 'hi' })
        await stillServing()
      })

      it('answers other paths with 404, other methods with 405, bad channel names with 400', async () => {
        expect((await post('/nope', '["PING"]')).status).toBe(404)
        const get = await fetch(`${server.url}/`, { headers: { Authorization: `Bearer ${server.token}` } })
        expect(get.status).toBe(405)
        expect((await post('/subscribe/%E0%A4%A', '[]')).status).toBe(400)
        expect((await post('/subscribe/a%0Ab', '[]')).status).toBe(400)
        await stillServing()
      })

      it('survives a malformed HTTP request', async () => {
        const { connect } = await import('node:net')
        const { hostname, port } = new URL(server.url)
        const reply = await new Promise<string>((resolve) => {
          const socket = connect(Number(port), hostname, () => socket.write('NOT HTTP AT ALL\r\n\r\n'))
          let out = ''
          socket.on('data', (d) => (out += d.toString()))
          socket.on('close', () => resolve(out))
          socket.on('error', () => resolve(out))
        })
        expect(reply).toMatch(/^HTTP\/1\.1 400/)
        await stillServing()
      })
    })

    describe('protocol', () => {
      it('base64-encodes strings when asked with Upstash-Encoding, and only then', async () => {
        const value = 'héllo 🚀'
        expect((await command(['SET', key('enc'), value])).body).toEqual({ result: 'OK' })
        const plain = await command(['GET', key('enc')])
        expect(plain.body).toEqual({ result: value })
        const encoded = await command(['GET', key('enc')], { 'Upstash-Encoding': 'base64' })
        expect(encoded.body).toEqual({ result: Buffer.from(value).toString('base64') })
        const ok = await command(['SET', key('enc'), 'v'], { 'Upstash-Encoding': 'base64' })
        expect(ok.body).toEqual({ result: 'OK' })
        const n = await command(['INCRBY', key('n2'), 5], { 'Upstash-Encoding': 'base64' })
        expect(n.body).toEqual({ result: 5 })
      })

      it('runs SET options, expiry commands and the incr script as Redis does', async () => {
        const k = key('semantics')
        expect((await command(['SET', k, 'a', 'PX', 5000, 'NX'])).body.result).toBe('OK')
        expect((await command(['SET', k, 'b', 'NX'])).body.result).toBeNull()
        expect((await command(['SET', k, 'c', 'XX', 'EX', 10])).body.result).toBe('OK')
        expect((await command(['TTL', k])).body.result).toBe(10)
        const pttl = (await command(['PTTL', k])).body.result as number
        expect(pttl).toBeGreaterThan(9_000)
        expect((await command(['SET', k, 'd', 'PX', 0])).body.error).toMatch(/invalid expire time/)
        expect((await command(['SET', k, 'd', 'BOGUS'])).body.error).toBe('ERR syntax error')
        expect((await command(['PEXPIRE', k, 60_000, 'NX'])).body.result).toBe(0)
        expect((await command(['PEXPIRE', k, 60_000, 'GT'])).body.result).toBe(1)
        expect((await command(['DEL', k, key('absent')])).body.result).toBe(1)
        expect((await command(['PEXPIRE', k, 1000])).body.result).toBe(0)
        expect((await command(['TTL', k])).body.result).toBe(-2)
        const c = key('counter')
        expect((await command(['EVAL', INCR_SCRIPT, 1, c, 2, 3000])).body.result).toBe(2)
        expect((await command(['EVAL', INCR_SCRIPT, 1, c, 2, 60_000])).body.result).toBe(4)
        expect((await command(['TTL', c])).body.result).toBe(3)
        expect((await command(['PUBLISH', key('nobody'), 'x'])).body.result).toBe(0)
      })

      it('runs /multi-exec as one transaction and refuses it whole on an unknown command', async () => {
        const res = await post('/multi-exec', JSON.stringify([['SET', key('tx'), '1'], ['INCRBY', key('tx'), 2], ['GET', key('tx')]]))
        expect(res.status).toBe(200)
        expect(await res.json()).toEqual([{ result: 'OK' }, { result: 3 }, { result: '3' }])
        const refused = await post('/multi-exec', JSON.stringify([['SET', key('tx'), '9'], ['NOSUCHCOMMAND']]))
        expect(refused.status).toBe(400)
        expect(((await refused.json()) as { error: string }).error).toMatch(/EXECABORT|not supported/)
        expect((await command(['GET', key('tx')])).body.result).toBe('3')
      })

      it('works with @upstash/redis as its own users would call it (commands, pipeline, multi, subscribe)', async () => {
        const client = new UpstashRedis({ url: server.url, token: server.token, enableTelemetry: false })
        await client.set(key('sdk'), { a: 1 })
        expect(await client.get(key('sdk'))).toEqual({ a: 1 })
        const piped = await client.pipeline().set(key('p'), 'v').get(key('p')).incr(key('pn')).exec()
        expect(piped).toEqual(['OK', 'v', 1])
        const multi = await client.multi().incr(key('m')).incr(key('m')).exec()
        expect(multi).toEqual([1, 2])

        const subscriber = client.subscribe<string>([key('sdk-ch')])
        const got: string[] = []
        let active = 0
        subscriber.on('subscribe', (count) => (active = count))
        subscriber.on('message', ({ message }) => got.push(message))
        await expect.poll(() => active, { timeout: 2_000 }).toBe(1)
        expect(await client.publish(key('sdk-ch'), 'hello')).toBe(1)
        await expect.poll(() => got, { timeout: 2_000 }).toEqual(['hello'])
        await subscriber.unsubscribe()
        await expect.poll(() => client.publish(key('sdk-ch'), 'gone'), { timeout: 2_000 }).toBe(0)
      })

      it('streams SSE events in the format the client parses', async () => {
        const channel = key('raw')
        const controller = new AbortController()
        const res = await fetch(`${server.url}/subscribe/${encodeURIComponent(channel)}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${server.token}`, Accept: 'text/event-stream' },
          body: '[]',
          signal: controller.signal,
        })
        expect(res.status).toBe(200)
        expect(res.headers.get('content-type')).toBe('text/event-stream')
        const reader = (res.body as ReadableStream<Uint8Array>).getReader()
        let text = ''
        const readUntil = async (needle: string) => {
          while (!text.includes(needle)) {
            const { value, done } = await reader.read()
            if (done) throw new Error('stream ended')
            text += new TextDecoder().decode(value)
          }
        }
        await readUntil('\n\n')
        expect(text).toBe(`data: subscribe,${channel},1\n\n`)
        await command(['PUBLISH', channel, 'one\ntwo'])
        await readUntil('two\n\n')
        expect(text).toBe(`data: subscribe,${channel},1\n\ndata: message,${channel},one\ndata: two\n\n`)
        controller.abort()
        await expect.poll(async () => (await command(['PUBLISH', channel, 'x'])).body.result, { timeout: 2_000 }).toBe(0)
      })
    })
  })
}

describe('bus REST server lifecycle', () => {
  it('answers 503 while Redis is unreachable, and keeps serving', async () => {
    const server = await startBusRestServer({ backend: { kind: 'redis', url: 'redis://127.0.0.1:1' } })
    try {
      const headers = { Authorization: `Bearer ${server.token}` }
      const res = await fetch(`${server.url}/`, { method: 'POST', headers, body: '["GET","k"]' })
      expect(res.status).toBe(503)
      expect(await res.json()).toEqual({ error: 'ERR the bus backend is unavailable' })
      const sse = await fetch(`${server.url}/subscribe/ch`, { method: 'POST', headers, body: '[]' })
      expect(sse.status).toBe(503)
      const bad = await fetch(`${server.url}/`, { method: 'POST', headers, body: '{' })
      expect(bad.status).toBe(400)
    } finally {
      await server.close()
    }
  })

  it('ends open streams and closes even while clients are connected', async () => {
    const server = await startBusRestServer({ backend: { kind: 'memory' }, token: 'fixed-token' })
    expect(server.token).toBe('fixed-token')
    const res = await fetch(`${server.url}/subscribe/ch`, {
      method: 'POST',
      headers: { Authorization: 'Bearer fixed-token' },
      body: '[]',
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    await reader.read() // the subscribe confirmation
    const started = Date.now()
    await server.close()
    expect(Date.now() - started).toBeLessThan(1_500)
    // The stream ends (or is cut): either way the client is not left hanging.
    const next = await Promise.race([reader.read().then(({ done }) => done, () => true), sleep(2_000).then(() => 'hung')])
    expect(next).toBe(true)
    await expect(fetch(`${server.url}/`, { method: 'POST', body: '["PING"]' })).rejects.toThrow()
  })
})
