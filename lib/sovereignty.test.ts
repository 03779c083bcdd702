/** Which upstreams the gateway may call. */
import { describe, expect, it } from 'vitest'
import { isSovereignHost, parseUpstreams } from './sovereignty.ts'

describe('isSovereignHost', () => {
  it.each([
    'localhost', '127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.20', '[::1]', '::1',
    'fd12:3456::1', 'ollama', 'nexus_ollama', 'ollama.nexus-prime.svc', 'ollama.nexus-prime.svc.cluster.local',
    'box.local', 'api.localhost',
  ])('allows %s', (h) => expect(isSovereignHost(h)).toBe(true))

  it.each([
    'api.openai.com', 'generativelanguage.googleapis.com', '8.8.8.8', '172.32.0.1', '169.254.169.254',
    'metadata.google.internal', '192.169.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8', '0x7f000001', '2130706433',
    'evil.com.', 'localhost.evil.com', 'svc.evil.com', '',
  ])('refuses %s', (h) => expect(isSovereignHost(h)).toBe(false))
})

describe('parseUpstreams', () => {
  it('normalizes a pool', () => {
    expect(parseUpstreams('http://127.0.0.1:11434/, http://ollama-2:11434').urls).toEqual([
      'http://127.0.0.1:11434',
      'http://ollama-2:11434',
    ])
  })
  it('refuses credentials in the URL and empty pools', () => {
    expect(parseUpstreams('http://u:p@127.0.0.1:11434').error).toMatch(/credentials/)
    expect(parseUpstreams(' , ').error).toMatch(/no upstream/)
  })
})
