/** The auth environment variables: defaults, and one line naming the variable for a bad value. */
import { describe, expect, it } from 'vitest'
import { ConfigError, parseEnv } from '../env.ts'

const problem = (env: Record<string, string>) => {
  try {
    parseEnv(env)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('auth configuration', () => {
  it('has safe defaults', () => {
    const config = parseEnv({})
    expect(config.NEXUS_KEY_ENCRYPTION_KEY).toBeUndefined()
    expect(config).toMatchObject({
      NEXUS_LOGIN_LOCK_SECONDS: 900,
      NEXUS_LOGIN_MAX_FAILURES: 10,
      NEXUS_LOGIN_MAX_CLIENT_FAILURES: 50,
      NEXUS_LOGIN_RATE_LIMIT: 60,
      NEXUS_VERIFY_RATE_LIMIT: 600,
      NEXUS_TOKEN_TTL: 86400,
    })
  })

  it('accepts a 32-byte base64 key-encryption key', () => {
    const key = Buffer.from(new Uint8Array(32).fill(9)).toString('base64')
    expect(parseEnv({ NEXUS_KEY_ENCRYPTION_KEY: key }).NEXUS_KEY_ENCRYPTION_KEY).toBe(key)
  })

  it.each([
    [{ NEXUS_KEY_ENCRYPTION_KEY: 'c2hvcnQ=' }, 'NEXUS_KEY_ENCRYPTION_KEY: must be 32 random bytes in base64 (openssl rand -base64 32)'],
    [{ NEXUS_KEY_ENCRYPTION_KEY: 'not base64 at all!' }, 'NEXUS_KEY_ENCRYPTION_KEY: must be 32 random bytes in base64 (openssl rand -base64 32)'],
    [{ NEXUS_LOGIN_LOCK_SECONDS: '0' }, 'NEXUS_LOGIN_LOCK_SECONDS: must be at least 1'],
    [{ NEXUS_LOGIN_MAX_FAILURES: 'ten' }, 'NEXUS_LOGIN_MAX_FAILURES: must be a whole number'],
    [{ NEXUS_LOGIN_RATE_LIMIT: '-1' }, 'NEXUS_LOGIN_RATE_LIMIT: must be a whole number'],
  ])('stops on %o with one line', (env, line) => {
    const message = problem(env)
    expect(message).toBe(line)
    expect(message).not.toContain('\n')
  })

  it('never echoes a bad key-encryption key', () => {
    expect(problem({ NEXUS_KEY_ENCRYPTION_KEY: 'secret-but-wrong-length' })).not.toContain('secret-but-wrong-length')
  })
})
