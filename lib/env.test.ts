/** Env parsing: defaults, and one clear line naming the variable for each bad value. */
import { describe, expect, it } from 'vitest'
import { ConfigError, parseEnv } from './env.ts'

const bad = (env: Record<string, string>) => {
  try {
    parseEnv(env)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).message
  }
  throw new Error('expected a ConfigError')
}

describe('parseEnv', () => {
  it('gives the contract defaults', () => {
    const c = parseEnv({})
    expect(c).toMatchObject({
      PORT: 8080,
      HOST: '127.0.0.1',
      OLLAMA_BASE_URL: ['http://127.0.0.1:11434'],
      NEXUS_ADMIN_USERNAME: 'admin',
      NEXUS_TOKEN_TTL: 86400,
      NEXUS_DATA_DIR: './data',
      LOG_LEVEL: 'info',
      NEXUS_DB_SCHEMA: 'nexus_core',
      NEXUS_CORS_ORIGINS: [],
    })
    expect(c.DATABASE_URL).toBeUndefined()
    expect(c.REDIS_URL).toBeUndefined()
  })

  it('treats blank values as unset', () => {
    expect(parseEnv({ PORT: '', DATABASE_URL: ' ' })).toMatchObject({ PORT: 8080, DATABASE_URL: undefined })
  })

  it('parses lists and numbers', () => {
    const c = parseEnv({
      OLLAMA_BASE_URL: 'http://10.0.0.5:11434/, http://ollama:11434',
      NEXUS_CORS_ORIGINS: 'https://a.example,https://b.example',
      PORT: '9000',
    })
    expect(c.OLLAMA_BASE_URL).toEqual(['http://10.0.0.5:11434', 'http://ollama:11434'])
    expect(c.NEXUS_CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example'])
    expect(c.PORT).toBe(9000)
  })

  it.each([
    [{ PORT: 'eighty' }, /^PORT: must be a whole number$/],
    [{ PORT: '70000' }, /^PORT: must be at most 65535$/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL: must be a PostgreSQL URL/],
    [{ REDIS_URL: 'not a url' }, /^REDIS_URL: must be a Redis URL/],
    [{ UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:8079' }, /^UPSTASH_REDIS_REST_TOKEN: .*go together/],
    [{ OLLAMA_BASE_URL: 'https://api.openai.com' }, /^OLLAMA_BASE_URL: upstream "api.openai.com" is not loopback/],
    [{ OLLAMA_BASE_URL: 'http://8.8.8.8:11434' }, /^OLLAMA_BASE_URL: upstream "8.8.8.8"/],
    [{ OLLAMA_BASE_URL: 'ftp://127.0.0.1' }, /^OLLAMA_BASE_URL: .*must be http or https/],
    [{ NEXUS_TOKEN_TTL: '10' }, /^NEXUS_TOKEN_TTL: must be at least 60$/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: /],
    [{ NEXUS_ADMIN_PASSWORD: 'short' }, /^NEXUS_ADMIN_PASSWORD: must be at least 8 characters$/],
    [{ NEXUS_CORS_ORIGINS: 'not-an-origin' }, /^NEXUS_CORS_ORIGINS: /],
    [{ NEXUS_DB_SCHEMA: 'Robert"); drop' }, /^NEXUS_DB_SCHEMA: must be a lower-case SQL identifier$/],
  ])('refuses %o', (env, message) => {
    const line = bad(env)
    expect(line).toMatch(message)
    expect(line).not.toContain('\n')
  })

  it('never echoes a secret value in its message', () => {
    const line = bad({ NEXUS_MASTER_KEY: 'tiny-secret' })
    expect(line).toMatch(/^NEXUS_MASTER_KEY: /)
    expect(line).not.toContain('tiny-secret')
  })
})
