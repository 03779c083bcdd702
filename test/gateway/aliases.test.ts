/**
 * Model aliases: the contract's defaults, the models file (aliases, default parameters, host pools)
 * and admin-managed rows, each overriding the one before, all applied without a restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { bearer, describeRuntimes, expectEnvelope } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY, eventually, openai } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const one = await startOllamaDouble()
const two = await startOllamaDouble()
const dir = mkdtempSync(join(tmpdir(), 'nexus-models-'))
afterAll(async () => {
  await one.close()
  await two.close()
  rmSync(dir, { recursive: true, force: true })
})
beforeEach(() => {
  one.reset()
  two.reset()
})

const master = bearer(MASTER_KEY)
const hi = [{ role: 'user' as const, content: 'hi' }]
const chats = () => [...one.chats(), ...two.chats()]

describeRuntimes(
  'gateway aliases managed by admins',
  (host) => {
    it('lists the aliases in effect with their source', async () => {
      const res = await host().json('GET', '/api/v1/gateway/aliases', undefined, master)
      expect(res.status).toBe(200)
      expect(res.body.aliases.find((a: { alias: string }) => a.alias === 'claude-3-5-sonnet')).toMatchObject({
        target: 'llama3.2:3b',
        source: 'default',
        enabled: true,
        pool: 'default',
      })
      expect(res.body.pools).toEqual(['default'])
    })

    it('serves a new alias with its default parameters; the request overrides them', async () => {
      const created = await host().json(
        'POST',
        '/api/v1/gateway/aliases',
        { alias: 'team-model', target: 'qwen2.5:0.5b', params: { temperature: 0.1, num_ctx: 4096, stop: ['<end>'] } },
        master,
      )
      expect(created.status).toBe(201)
      expect(created.body).toMatchObject({ alias: 'team-model', target: 'qwen2.5:0.5b', source: 'database' })
      const client = openai(host())
      // Other isolates (workerd) see admin changes within the alias cache's few seconds.
      await eventually(async () => (await client.chat.completions.create({ model: 'team-model', messages: hi })).model === 'team-model')
      expect(chats().at(-1)!.body).toMatchObject({ model: 'qwen2.5:0.5b', options: { temperature: 0.1, num_ctx: 4096, stop: ['<end>'] } })
      await client.chat.completions.create({ model: 'team-model', messages: hi, temperature: 0.7 })
      expect(chats().at(-1)!.body.options).toMatchObject({ temperature: 0.7, num_ctx: 4096 })
      expectEnvelope(await host().json('POST', '/api/v1/gateway/aliases', { alias: 'team-model', target: 'x' }, master), 409)
    })

    it('overrides a default alias, disables it, and restores it, without a restart', async () => {
      const client = openai(host())
      const put = await host().json('PUT', '/api/v1/gateway/aliases/gpt-4', { target: 'qwen2.5:0.5b' }, master)
      expect(put.status).toBe(201)
      await eventually(async () => {
        await client.chat.completions.create({ model: 'gpt-4', messages: hi })
        return chats().at(-1)!.body.model === 'qwen2.5:0.5b'
      })
      expect((await host().json('PUT', '/api/v1/gateway/aliases/gpt-4', { target: 'qwen2.5:0.5b', enabled: false }, master)).status).toBe(200)
      const err = await eventually(async () => {
        const e = await client.chat.completions.create({ model: 'gpt-4', messages: hi }).catch((x) => x)
        return e instanceof OpenAI.NotFoundError ? e : undefined
      })
      expect(err.code).toBe('model_not_found')
      expect((await client.models.list()).data.map((m) => m.id)).not.toContain('gpt-4')
      expect((await host().fetch('/api/v1/gateway/aliases/gpt-4', { method: 'DELETE', headers: master })).status).toBe(204)
      await eventually(async () => {
        await client.chat.completions.create({ model: 'gpt-4', messages: hi })
        return chats().at(-1)!.body.model === 'llama3.2:3b'
      })
    })

    it('answers bad alias input with 4xx in the envelope', async () => {
      const post = (body: unknown) => host().json('POST', '/api/v1/gateway/aliases', body, master)
      expectEnvelope(await post({ alias: 'x' }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ alias: 'bad alias!', target: 'llama3.2:3b' }), 400, 'VALIDATION_FAILED')
      const typo = await post({ alias: 'typo', target: 'llama3.2:3b', params: { temprature: 1 } })
      expectEnvelope(typo, 400, 'VALIDATION_FAILED')
      expectEnvelope(await post({ alias: 'y', target: 'llama3.2:3b', pool: 'gpu' }), 400, 'VALIDATION_FAILED')
      expectEnvelope(await host().json('DELETE', '/api/v1/gateway/aliases/never-made', undefined, master), 404)
      expectEnvelope(await host().json('PUT', '/api/v1/gateway/aliases/z', { target: 'llama3.2:3b', params: { temperature: 9 } }, master), 400)
    })
  },
  { env: { OLLAMA_BASE_URL: one.url, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)

const modelsFile = join(dir, 'models.json')
const original = JSON.stringify({
  aliases: {
    fast: { model: 'qwen2.5:0.5b', params: { temperature: 0.2, top_k: 20 }, pool: 'small' },
    'gpt-4': 'qwen2.5:0.5b',
  },
  pools: { small: [two.url] },
})
writeFileSync(modelsFile, original)

describeRuntimes(
  'gateway models file',
  (host, runtime) => {
    it('applies the file: aliases over the defaults, default parameters, and the pool that serves them', async () => {
      const client = openai(host())
      for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: 'fast', messages: hi })
      // Pool "small" is the second host only.
      expect(one.chats()).toHaveLength(0)
      expect(two.chats()).toHaveLength(4)
      expect(two.chats()[0]!.body).toMatchObject({ model: 'qwen2.5:0.5b', options: { temperature: 0.2, top_k: 20 } })
      await client.chat.completions.create({ model: 'gpt-4', messages: hi })
      expect(chats().at(-1)!.body.model).toBe('qwen2.5:0.5b')
      const aliases = await host().json('GET', '/api/v1/gateway/aliases', undefined, master)
      expect(aliases.body.pools).toEqual(['default', 'small'])
      expect(aliases.body.aliases.find((a: { alias: string }) => a.alias === 'fast')).toMatchObject({ source: 'file', pool: 'small' })
      // Database rows win over the file.
      await host().json('PUT', '/api/v1/gateway/aliases/fast', { target: 'llama3.2:3b', pool: 'small' }, master)
      await eventually(async () => {
        await client.chat.completions.create({ model: 'fast', messages: hi })
        return two.chats().at(-1)!.body.model === 'llama3.2:3b'
      })
    })

    // The Node host re-reads the file when it changes. Workers have no filesystem: the workerd host
    // passes the file's content at start, and live changes there go through the admin API.
    it.skipIf(runtime === 'workerd')('picks up an edited models file without a restart', async () => {
      try {
        writeFileSync(modelsFile, JSON.stringify({ aliases: { 'brand-new': 'llama3.2:3b' } }))
        const client = openai(host())
        await eventually(async () => (await client.chat.completions.create({ model: 'brand-new', messages: hi })).model === 'brand-new', 5_000)
        // A broken edit keeps the last good aliases in force, and says so in the log.
        writeFileSync(modelsFile, '{ not json')
        await new Promise((r) => setTimeout(r, 1_500))
        expect((await client.chat.completions.create({ model: 'brand-new', messages: hi })).model).toBe('brand-new')
        expect(host().logs.some((l) => l.includes('models file changed but is not valid'))).toBe(true)
      } finally {
        writeFileSync(modelsFile, original)
      }
    })
  },
  {
    env: { OLLAMA_BASE_URL: `${one.url},${two.url}`, NEXUS_MASTER_KEY: MASTER_KEY, NEXUS_MODELS_FILE: modelsFile },
    functions: GATEWAY_FUNCTIONS,
  },
)
