/** GET /v1/models and POST /v1/embeddings through the official openai SDK. */
import OpenAI from 'openai'
import { afterAll, beforeEach, expect, it } from 'vitest'
import { DEFAULT_ALIASES } from '../../lib/ai/models.ts'
import { describeRuntimes } from '../support/harness.ts'
import { GATEWAY_FUNCTIONS, MASTER_KEY, openai } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const double = await startOllamaDouble()
afterAll(() => double.close())
beforeEach(() => double.reset())

const EMBED = 'nomic-embed-text:latest'

describeRuntimes(
  'gateway models and embeddings',
  (host) => {
    it('lists every alias and every local model, in OpenAI shape, and caches /api/tags', async () => {
      const client = openai(host())
      const page = await client.models.list()
      const ids = page.data.map((m) => m.id)
      for (const alias of DEFAULT_ALIASES) expect(ids).toContain(alias)
      for (const local of double.models) expect(ids).toContain(local)
      expect(new Set(ids).size).toBe(ids.length)
      for (const m of page.data) {
        expect(m.object).toBe('model')
        expect(typeof m.created).toBe('number')
      }
      expect(page.data.find((m) => m.id === 'gpt-4o')!.owned_by).toBe('nexus')
      expect(page.data.find((m) => m.id === 'qwen2.5:0.5b')!.owned_by).toBe('ollama')
      await client.models.list()
      const tags = double.requests.filter((r) => r.path === '/api/tags')
      expect(tags.length).toBeLessThanOrEqual(1)
      // Also without /v1, and one model by id.
      expect((await openai(host(), MASTER_KEY, { baseURL: host().url }).models.list()).data.length).toBe(ids.length)
      expect(await client.models.retrieve('gpt-4o')).toMatchObject({ id: 'gpt-4o', object: 'model', owned_by: 'nexus' })
      expect(await client.models.retrieve('llama3.2:3b')).toMatchObject({ id: 'llama3.2:3b', owned_by: 'ollama' })
      expect(await client.models.retrieve('nope').catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError)
    })

    it('embeds a string (the SDK asks for base64 and decodes it) with Ollama token counts', async () => {
      const client = openai(host())
      const res = await client.embeddings.create({ model: EMBED, input: 'The quick brown fox' })
      expect(res.object).toBe('list')
      expect(res.model).toBe(EMBED)
      expect(res.data).toHaveLength(1)
      expect(res.data[0]!.object).toBe('embedding')
      expect(res.data[0]!.index).toBe(0)
      expect(res.data[0]!.embedding).toHaveLength(double.embeddingDimensions)
      expect(res.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 })
      const [embed] = double.requests.filter((r) => r.path === '/api/embed')
      expect(embed!.body).toMatchObject({ model: EMBED, input: ['The quick brown fox'] })
      // The same vector as floats, exactly what Ollama gave; the base64 one is its float32 rounding.
      const floats = await client.embeddings.create({ model: EMBED, input: 'The quick brown fox', encoding_format: 'float' })
      floats.data[0]!.embedding.forEach((v, i) => expect(res.data[0]!.embedding[i]).toBeCloseTo(v, 5))
    })

    it('embeds an array in order, and passes dimensions to Ollama', async () => {
      const input = ['alpha', 'beta gamma', 'delta epsilon zeta']
      const res = await openai(host()).embeddings.create({ model: EMBED, input, dimensions: 4, encoding_format: 'float' })
      expect(res.data.map((d) => d.index)).toEqual([0, 1, 2])
      expect(res.data.every((d) => d.embedding.length === 4)).toBe(true)
      expect(new Set(res.data.map((d) => JSON.stringify(d.embedding))).size).toBe(3)
      expect(res.usage.prompt_tokens).toBe(6)
      const [embed] = double.requests.filter((r) => r.path === '/api/embed')
      expect(embed!.body).toMatchObject({ model: EMBED, input, dimensions: 4 })
    })

    it('answers 404 for an unknown embedding model and 400 for token arrays or empty input', async () => {
      const client = openai(host())
      expect(await client.embeddings.create({ model: 'nope', input: 'x' }).catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError)
      const tokens = await client.embeddings.create({ model: EMBED, input: [1, 2, 3] }).catch((e) => e)
      expect(tokens).toBeInstanceOf(OpenAI.BadRequestError)
      expect(tokens.param).toBe('input')
      expect(await client.embeddings.create({ model: EMBED, input: [] }).catch((e) => e)).toBeInstanceOf(OpenAI.BadRequestError)
      expect(await client.embeddings.create({ model: EMBED, input: '' }).catch((e) => e)).toBeInstanceOf(OpenAI.BadRequestError)
    })
  },
  { env: { OLLAMA_BASE_URL: double.url, NEXUS_MASTER_KEY: MASTER_KEY }, functions: GATEWAY_FUNCTIONS },
)
