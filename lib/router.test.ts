/** Route matching shared by the hosts. */
import { describe, expect, it } from 'vitest'
import { createRouter } from './router.ts'

const match = createRouter([
  { name: 'get-one', routes: [{ method: 'GET', path: '/api/v1/commands/:id' }] },
  { name: 'claim', routes: [{ method: 'POST', path: '/api/v1/agents/:agent_id/commands/claim' }] },
  { name: 'static', routes: [{ method: 'GET', path: '/api/v1/commands/stats' }] },
  { name: 'health', routes: [{ method: 'GET', path: '/health' }] },
])

describe('createRouter', () => {
  it('prefers static routes over parameterized ones', () => {
    expect(match('GET', '/api/v1/commands/stats')).toEqual({ kind: 'found', name: 'static' })
    expect(match('GET', '/api/v1/commands/abc')).toEqual({ kind: 'found', name: 'get-one' })
  })
  it('matches parameters within one segment only', () => {
    expect(match('POST', '/api/v1/agents/a1/commands/claim')).toEqual({ kind: 'found', name: 'claim' })
    expect(match('POST', '/api/v1/agents/a/b/commands/claim')).toEqual({ kind: 'none' })
  })
  it('reports the allowed methods when only the method is wrong', () => {
    expect(match('POST', '/health')).toEqual({ kind: 'method', allow: ['GET'] })
  })
  it('serves HEAD as GET, sends OPTIONS to the owner of the path, and tolerates a trailing slash', () => {
    expect(match('HEAD', '/health')).toEqual({ kind: 'found', name: 'health' })
    expect(match('OPTIONS', '/health')).toEqual({ kind: 'found', name: 'health' })
    expect(match('GET', '/health/')).toEqual({ kind: 'found', name: 'health' })
  })
  it('does not treat regex characters in paths as patterns', () => {
    expect(match('GET', '/healthX')).toEqual({ kind: 'none' })
  })
})
