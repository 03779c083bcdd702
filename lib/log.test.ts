/** Logging never prints a secret. */
import { describe, expect, it } from 'vitest'
import { createLogger, scrub } from './log.ts'

describe('logger', () => {
  it('redacts sensitive keys at any depth and token-shaped values anywhere', () => {
    const lines: string[] = []
    const log = createLogger('debug', { service: 't' }, (l) => lines.push(l))
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl'
    log.info(`login with ${jwt}`, {
      password: 'hunter2',
      nested: { api_key: 'nx-abcdef123456', authorization: 'Bearer abc', ok: 'visible' },
      url: 'postgres://nexus:s3cret@db:5432/nexus',
      header: `Bearer ${jwt}`,
      err: new Error('connect postgres://u:pw@h/db failed'),
    })
    const text = lines.join('\n')
    for (const secret of ['hunter2', 'nx-abcdef123456', 's3cret', jwt, ':pw@', 'Bearer abc']) expect(text).not.toContain(secret)
    const entry = JSON.parse(lines[0]!)
    expect(entry).toMatchObject({ level: 'info', service: 't', nested: { ok: 'visible' } })
  })

  it('respects the level', () => {
    const lines: string[] = []
    const log = createLogger('warn', {}, (l) => lines.push(l))
    log.info('quiet')
    log.warn('loud')
    expect(lines).toHaveLength(1)
  })

  it('scrub leaves ordinary text alone', () => {
    expect(scrub('agent shadow7 completed cmd 42')).toBe('agent shadow7 completed cmd 42')
  })
})
