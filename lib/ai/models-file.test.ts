/** The models file: aliases, parameters and pools, validated against the configured hosts. */
import { describe, expect, it } from 'vitest'
import { parseModelsFile } from './models-file.ts'

const hosts = ['http://127.0.0.1:11434', 'http://ollama-gpu:11434']

describe('parseModelsFile', () => {
  it('reads aliases as names or objects, with parameters and pools', () => {
    const r = parseModelsFile(
      JSON.stringify({
        aliases: { 'gpt-4o': 'llama3.1:8b', fast: { model: 'qwen2.5:0.5b', params: { temperature: 0.2, max_tokens: 256 }, pool: 'gpu' } },
        pools: { gpu: ['http://ollama-gpu:11434/'] },
      }),
      hosts,
    )
    expect(r.error).toBeUndefined()
    expect(r.file!.aliases['gpt-4o']).toEqual({ model: 'llama3.1:8b', params: {}, pool: undefined })
    expect(r.file!.aliases.fast).toEqual({ model: 'qwen2.5:0.5b', params: { temperature: 0.2, max_tokens: 256 }, pool: 'gpu' })
    expect(r.file!.pools.gpu).toEqual(['http://ollama-gpu:11434'])
  })

  it.each([
    ['{', /not valid JSON/],
    ['{"aliases": {"a": {"model": "m", "params": {"temprature": 1}}}}', /^aliases\.a/],
    ['{"aliases": {"bad name": "m"}}', /aliases/],
    ['{"aliases": {"a": {"model": "m", "pool": "gpu"}}}', /^aliases\.a\.pool: no pool named "gpu"/],
    ['{"pools": {"gpu": ["http://10.9.9.9:11434"]}}', /^pools\.gpu: "http:\/\/10\.9\.9\.9:11434" is not one of the OLLAMA_BASE_URL hosts$/],
    ['{"pools": {"gpu": []}}', /^pools\.gpu/],
    ['{"extra": 1}', /extra|Unrecognized/],
  ])('refuses %s', (text, problem) => {
    expect(parseModelsFile(text, hosts).error).toMatch(problem)
  })
})
