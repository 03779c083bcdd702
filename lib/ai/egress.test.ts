/** The egress guard: only URLs under the configured Ollama hosts are fetched, and redirects are never followed. */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EgressDeniedError, createEgressFetch, isAllowedUpstream } from './egress.ts'

const u = (s: string) => new URL(s)

describe('isAllowedUpstream', () => {
  const bases = ['http://127.0.0.1:11434', 'http://ollama:11434/prefix']
  it.each([
    'http://127.0.0.1:11434/api/chat',
    'http://127.0.0.1:11434/',
    'http://ollama:11434/prefix/api/tags',
    'http://ollama:11434/prefix',
  ])('allows %s', (url) => expect(isAllowedUpstream(u(url), bases)).toBe(true))
  it.each([
    'http://127.0.0.1:11435/api/chat', // another port
    'https://127.0.0.1:11434/api/chat', // another scheme
    'http://localhost:11434/api/chat', // another name for the same host: not what was configured
    'http://ollama:11434/prefixed/api', // outside the base path
    'http://ollama:11434/api/chat',
    'http://user:pw@127.0.0.1:11434/api/chat',
    'http://api.openai.com/v1/chat/completions',
  ])('refuses %s', (url) => expect(isAllowedUpstream(u(url), bases)).toBe(false))
})

describe('createEgressFetch', () => {
  const hits: string[] = []
  let allowed: Server
  let other: Server
  let allowedUrl = ''
  let otherUrl = ''
  const listen = (s: Server) => new Promise<string>((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)))
  beforeAll(async () => {
    other = createServer((req, res) => {
      hits.push(`other ${req.url}`)
      res.end('other')
    })
    otherUrl = await listen(other)
    allowed = createServer((req, res) => {
      hits.push(`allowed ${req.url}`)
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `${otherUrl}/stolen` })
        return res.end()
      }
      res.end('ok')
    })
    allowedUrl = await listen(allowed)
  })
  afterAll(async () => {
    await new Promise((r) => allowed.close(r))
    await new Promise((r) => other.close(r))
  })

  it('fetches a configured host and refuses any other URL before connecting', async () => {
    const egress = createEgressFetch([allowedUrl])
    expect(await (await egress(`${allowedUrl}/api/version`)).text()).toBe('ok')
    await expect(egress(`${otherUrl}/api/chat`)).rejects.toBeInstanceOf(EgressDeniedError)
    await expect(egress(new Request(`${otherUrl}/x`))).rejects.toBeInstanceOf(EgressDeniedError)
    expect(hits).toEqual(['allowed /api/version'])
  })

  it('hands a redirect back instead of following it', async () => {
    hits.length = 0
    const res = await createEgressFetch([allowedUrl])(`${allowedUrl}/redirect`)
    expect(res.status).toBe(302)
    expect(hits).toEqual(['allowed /redirect'])
  })
})
