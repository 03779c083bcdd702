/**
 * The Ollama host pool and sovereignty on the wire: two hosts share the load, one stopped mid-run
 * leaves the other serving, and nothing but the configured hosts is ever called, whatever a request
 * says (model names that look like URLs, image URLs, base URLs in the body, forwarding headers).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { describeRuntimes } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY, eventually, openai } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const a = await startOllamaDouble()
const b = await startOllamaDouble()

// A server the gateway must never call: any request to it is a sovereignty failure.
const canaryHits: string[] = []
const canary: Server = createServer((req, res) => {
  canaryHits.push(`${req.method} ${req.url}`)
  res.end('{}')
})
await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r))
const canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}`

afterAll(async () => {
  await a.close()
  await b.close()
  await new Promise((r) => canary.close(r))
})
beforeEach(() => {
  a.reset()
  b.reset()
})

const hi = [{ role: 'user' as const, content: 'hi' }]

describeRuntimes(
  'gateway host pool',
  (host) => {
    it('spreads requests over both hosts, least busy first', async () => {
      a.defaultScript = { text: ['slow ', 'answer'], chunkDelayMs: 150 }
      b.defaultScript = { text: ['slow ', 'answer'], chunkDelayMs: 150 }
      const client = openai(host())
      await Promise.all(Array.from({ length: 6 }, () => client.chat.completions.create({ model: 'gpt-4o', messages: hi })))
      expect(a.chats().length).toBeGreaterThanOrEqual(2)
      expect(b.chats().length).toBeGreaterThanOrEqual(2)
      expect(a.chats().length + b.chats().length).toBe(6)
    })

    it('keeps answering on the other host when one is stopped mid-run, and uses it again once back', async () => {
      const client = openai(host())
      const run = async (n: number, stream: boolean) => {
        for (let i = 0; i < n; i++) {
          if (stream) {
            const s = await client.chat.completions.create({ model: 'gpt-4o', messages: hi, stream: true })
            let text = ''
            for await (const c of s) text += c.choices[0]?.delta.content ?? ''
            expect(text).toBe('Hello from the Ollama double.')
          } else expect((await client.chat.completions.create({ model: 'gpt-4o', messages: hi })).choices[0]!.message.content).toBeTruthy()
        }
      }
      await run(4, false)
      expect(a.chats().length).toBeGreaterThan(0)
      // Three clients keep calling while host a stops under them. Every request that starts after the
      // stop must succeed; one already being answered by a when it stopped may fail (the gateway retries
      // only before the first byte), nothing else.
      let stopping = true
      let stoppedAt = Number.POSITIVE_INFINITY
      const results: Array<{ start: number; ok: boolean }> = []
      const loops = [false, true, false].map(async (stream) => {
        let after = 0
        while (stopping || after < 4) {
          const start = performance.now()
          const ok = await run(1, stream).then(
            () => true,
            () => false,
          )
          results.push({ start, ok })
          if (start > stoppedAt) after++
        }
      })
      await new Promise((r) => setTimeout(r, 100))
      const before = b.chats().length
      await a.stop()
      stoppedAt = performance.now()
      try {
        await new Promise((r) => setTimeout(r, 500))
        stopping = false
        await Promise.all(loops)
        const afterStop = results.filter((r) => r.start > stoppedAt)
        expect(afterStop.length).toBeGreaterThanOrEqual(12)
        expect(afterStop.every((r) => r.ok)).toBe(true)
        expect(results.filter((r) => !r.ok).length).toBeLessThanOrEqual(3)
        expect(b.chats().length - before).toBeGreaterThanOrEqual(12)
      } finally {
        stopping = false
        await a.start()
      }
      // After its cooldown (1 s, doubling with each failure) the host that came back is tried again.
      a.reset()
      await eventually(async () => {
        await run(2, false)
        return a.chats().length > 0
      }, 20_000)
    })

    it('calls only the configured hosts, by the names configured, whatever the request says', async () => {
      const client = openai(host())
      const tries = [
        client.chat.completions.create({ model: `${canaryUrl}/api/chat`, messages: hi }),
        client.chat.completions.create({ model: '../../127.0.0.1', messages: hi }),
        client.chat.completions.create({
          model: 'gpt-4o',
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${canaryUrl}/cat.png` } }] }],
        }),
        client.chat.completions.create({ model: 'gpt-4o', messages: hi, ...({ base_url: canaryUrl, api_base: canaryUrl } as object) }),
        client.chat.completions.create(
          { model: 'gpt-4o', messages: hi },
          { headers: { 'x-forwarded-host': new URL(canaryUrl).host, host: new URL(canaryUrl).host, 'x-ollama-host': canaryUrl } },
        ),
        client.embeddings.create({ model: `${canaryUrl}/x`, input: 'x' }),
      ]
      const results = await Promise.allSettled(tries)
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(OpenAI.APIError)
      expect(canaryHits).toEqual([])
      const seen = [...a.requests, ...b.requests]
      expect(seen.length).toBeGreaterThan(0)
      const allowed = new Set([new URL(a.url).host, new URL(b.url).host])
      for (const r of seen) expect(allowed.has(r.host), r.host).toBe(true)
      expect(seen.every((r) => r.path.startsWith('/api/'))).toBe(true)
    })
  },
  { env: { OLLAMA_BASE_URL: `${a.url},${b.url}`, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)
