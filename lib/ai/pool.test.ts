/** The host pool against real HTTP servers (the Ollama double): routing, retries, cooldown, 503s. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ApiError } from '../errors.ts'
import { startOllamaDouble, type OllamaDouble } from '../../test/support/ollama-double.ts'
import { OllamaPool, newTrace, poolSnapshot, resetPoolState } from './pool.ts'

let a: OllamaDouble
let b: OllamaDouble
const closed = 'http://127.0.0.1:9' // nothing listens there
const chat = (model = 'llama3.2:3b') => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }], stream: true }),
})

beforeAll(async () => {
  a = await startOllamaDouble()
  b = await startOllamaDouble()
})
afterAll(async () => {
  await a.close()
  await b.close()
})
beforeEach(() => {
  resetPoolState()
  a.reset()
  b.reset()
})

const noWait = { sleep: async () => undefined }

describe('OllamaPool', () => {
  it('sends to the least busy host, and counts a host busy until its body is read', async () => {
    const pool = new OllamaPool([a.url, b.url], [a.url, b.url], noWait)
    a.defaultScript = { text: ['x'], hang: true }
    b.defaultScript = { text: ['x'], hang: true }
    const first = await pool.request('/api/chat', chat())
    const second = await pool.request('/api/chat', chat())
    expect([a.chats().length, b.chats().length]).toEqual([1, 1])
    expect(poolSnapshot([a.url, b.url]).map((s) => s.inFlight)).toEqual([1, 1])
    await first.body!.cancel()
    await second.body!.cancel()
    expect(poolSnapshot([a.url, b.url]).map((s) => s.inFlight)).toEqual([0, 0])
  })

  it('moves on from a host that refuses connections, and cools it down for later requests', async () => {
    const pool = new OllamaPool([closed, a.url], [closed, a.url], noWait)
    for (let i = 0; i < 4; i++) {
      const trace = newTrace()
      const res = await pool.request('/api/chat', chat(), trace)
      await res.text()
      expect(trace.host).toBe(new URL(a.url).host)
    }
    expect(a.chats()).toHaveLength(4)
    const [down] = poolSnapshot([closed])
    expect(down!.failures).toBe(1) // tried once, then skipped while cooling down
    expect(down!.downUntil).toBeGreaterThan(Date.now())
  })

  it('answers 503 that says Ollama is down, fast while every host cools down, with Retry-After', async () => {
    let now = 1_000_000
    const pool = new OllamaPool([closed], [closed], { ...noWait, now: () => now })
    const first = await pool.request('/api/chat', chat()).catch((e) => e)
    expect(first).toBeInstanceOf(ApiError)
    expect(first).toMatchObject({ status: 503, code: 'UPSTREAM_UNAVAILABLE' })
    expect(first.message).toMatch(/Ollama is not reachable/)
    const fast = await pool.request('/api/chat', chat()).catch((e) => e)
    expect(fast.message).toMatch(/Ollama is down/)
    expect(Number(fast.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    // After the cooldown the host is tried again (and its next cooldown is longer).
    now += 1_001
    await pool.request('/api/chat', chat()).catch((e) => e)
    expect(poolSnapshot([closed])[0]!.failures).toBe(2)
    expect(poolSnapshot([closed])[0]!.downUntil).toBe(now + 2_000)
  })

  it('retries a 5xx on the same host after a backoff when it is the only one, and reports a persistent one', async () => {
    const waits: number[] = []
    const pool = new OllamaPool([a.url], [a.url], { sleep: async (ms) => void waits.push(ms) })
    a.enqueue({ status: 500, errorMessage: 'runner crashed' }, { text: 'ok' })
    const res = await pool.request('/api/chat', chat())
    expect(res.status).toBe(200)
    await res.text()
    expect(a.chats()).toHaveLength(2)
    expect(waits).toHaveLength(1)
    resetPoolState()
    const again = new OllamaPool([a.url], [a.url], noWait)
    a.enqueue({ status: 500, errorMessage: 'runner crashed' }, { status: 500, errorMessage: 'runner crashed' }, { status: 500, errorMessage: 'runner crashed' })
    const err = await again.request('/api/chat', chat()).catch((e) => e)
    expect(err).toMatchObject({ status: 502, code: 'UPSTREAM_ERROR' })
    expect(err.message).toBe('Ollama answered 500: runner crashed')
  })

  it('hands back a 4xx answer as is (the caller reads Ollama\'s message)', async () => {
    const pool = new OllamaPool([a.url], [a.url], noWait)
    const res = await pool.request('/api/chat', chat('nope'))
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: 'model "nope" not found, try pulling it first' })
    expect(poolSnapshot([a.url])[0]).toMatchObject({ inFlight: 0, failures: 0 })
  })

  it('refuses a provider URL that is not the pool\'s', async () => {
    const pool = new OllamaPool([a.url], [a.url], noWait)
    await expect(pool.fetchFor(newTrace())(`${b.url}/api/chat`, chat())).rejects.toMatchObject({ name: 'EgressDeniedError' })
    expect(b.requests).toHaveLength(0)
  })
})
