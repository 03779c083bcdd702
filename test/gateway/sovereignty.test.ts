/**
 * Data sovereignty as an operator meets it: a public Ollama upstream, or a models file naming a host
 * outside OLLAMA_BASE_URL, stops start-up with one line; and a running `npm start` opens no connection
 * and resolves no name outside loopback and private ranges, at boot or while serving the gateway.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../lib/env.ts'
import { startWorkerdHost } from '../../local-runtime/workerd/host.ts'
import { MASTER_KEY } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'
import { freePort, spawnHost, waitFor200 } from '../support/process.ts'

const dir = mkdtempSync(join(tmpdir(), 'nexus-sovereignty-'))
const double = await startOllamaDouble()
afterAll(async () => {
  await double.close()
  rmSync(dir, { recursive: true, force: true })
})

const stopsWith = async (env: Record<string, string>, line: RegExp, entry?: string) => {
  const started = spawnHost({ NEXUS_DATA_DIR: join(dir, 'data'), ...env }, entry)
  expect(await started.exited).toBe(1)
  expect(started.output()).toMatch(line)
  expect(started.output()).not.toMatch(/\n\s+at /)
  // Refused before anything started: no database, no listener.
  expect(started.output()).not.toMatch(/migrations|listening/)
}

describe('gateway sovereignty at start-up', () => {
  it.each([
    ['https://api.openai.com', 'api.openai.com'],
    ['http://8.8.8.8:11434', '8.8.8.8'],
    ['http://169.254.169.254/latest', '169.254.169.254'],
    ['http://127.0.0.1:11434,https://generativelanguage.googleapis.com', 'generativelanguage.googleapis.com'],
    // Numeric host forms are read as the URL parser (and so fetch) reads them: 134744072 is 8.8.8.8.
    ['http://134744072:11434', '8.8.8.8'],
    ['http://0x08.8.8.8:11434', '8.8.8.8'],
    ['http://[2001:4860:4860::8888]:11434', '[2001:4860:4860::8888]'],
  ])('refuses OLLAMA_BASE_URL=%s with one line naming the host', async (url, hostname) => {
    const escaped = hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    await stopsWith(
      { OLLAMA_BASE_URL: url },
      new RegExp(`^nexus: cannot start: OLLAMA_BASE_URL: upstream "${escaped}" is not loopback, private-range or cluster-local; NEXUS only calls local Ollama hosts$`, 'm'),
    )
  })

  it('refuses a models file whose pool names a host outside OLLAMA_BASE_URL, or that is not valid', async () => {
    const file = join(dir, 'models.json')
    writeFileSync(file, JSON.stringify({ aliases: { x: { model: 'llama3.2:3b', pool: 'gpu' } }, pools: { gpu: ['http://10.0.0.9:11434'] } }))
    await stopsWith(
      { OLLAMA_BASE_URL: 'http://127.0.0.1:11434', NEXUS_MODELS_FILE: file },
      /^nexus: cannot start: NEXUS_MODELS_FILE: .*models\.json: pools\.gpu: "http:\/\/10\.0\.0\.9:11434" is not one of the OLLAMA_BASE_URL hosts$/m,
    )
    writeFileSync(file, '{"aliases": ')
    await stopsWith({ NEXUS_MODELS_FILE: file }, /^nexus: cannot start: NEXUS_MODELS_FILE: .*not valid JSON/m)
    await stopsWith({ NEXUS_MODELS_FILE: join(dir, 'missing.json') }, /^nexus: cannot start: NEXUS_MODELS_FILE: cannot read .*missing\.json \(ENOENT\)$/m)
    await stopsWith({ NEXUS_MODELS_JSON: '{"aliases": {"a": {"model": "m", "temperature": 1}}}' }, /^nexus: cannot start: NEXUS_MODELS_JSON: aliases\.a/m)
  })

  it('refuses a public upstream on the workerd host too', async () => {
    await expect(startWorkerdHost({ env: { OLLAMA_BASE_URL: 'https://api.openai.com', NEXUS_DATA_DIR: join(dir, 'w') } })).rejects.toBeInstanceOf(ConfigError)
    await stopsWith({ OLLAMA_BASE_URL: 'https://api.openai.com' }, /^nexus: cannot start: OLLAMA_BASE_URL: upstream "api\.openai\.com"/m, 'local-runtime/workerd/main.ts')
  })

  it('npm start connects to nothing but local addresses, at boot and while serving the gateway', { timeout: 150_000 }, async () => {
    const port = await freePort()
    const started = spawnHost({
      PORT: String(port),
      NEXUS_DATA_DIR: join(dir, 'egress'),
      OLLAMA_BASE_URL: double.url,
      NEXUS_MASTER_KEY: MASTER_KEY,
      NEXUS_ADMIN_PASSWORD: 'sovereignty-test-pw',
      NODE_OPTIONS: `--import ${join(import.meta.dirname, '..', 'support', 'egress-recorder.mjs')}`,
    })
    try {
      await waitFor200(`http://127.0.0.1:${port}/health/ready`, 120_000, started)
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: MASTER_KEY, maxRetries: 0 })
      await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true })
      for await (const _ of stream) void _
      await client.models.list()
      await client.embeddings.create({ model: 'nomic-embed-text:latest', input: 'x' })
      await (await fetch(`http://127.0.0.1:${port}/health`)).text()
    } finally {
      started.child.kill('SIGTERM')
    }
    expect(await started.exited).toBe(0)
    expect(double.requests.length).toBeGreaterThanOrEqual(4)
    expect(started.output()).not.toMatch(/^EGRESS /m)
  })
})
