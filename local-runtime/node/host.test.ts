/** Choosing which functions a host serves: all, a service group, or named functions. */
import { describe, expect, it } from 'vitest'
import { functions } from '../../workers.config.ts'
import { selectFunctions } from './host.ts'

describe('selectFunctions', () => {
  it('serves every function by default', () => {
    expect(selectFunctions().map((f) => f.name)).toEqual(functions.map((f) => f.name))
  })
  it('serves one service group, or named functions, or both', () => {
    expect(selectFunctions(['ops']).every((f) => f.group === 'ops')).toBe(true)
    expect(selectFunctions(['ops']).map((f) => f.name)).toContain('health')
    expect(selectFunctions(undefined, ['metrics']).map((f) => f.name)).toEqual(['metrics'])
  })
  it('refuses an unknown group or function by name', () => {
    expect(() => selectFunctions(['nope'])).toThrow('--service: unknown service group "nope"')
    expect(() => selectFunctions(undefined, ['nope'])).toThrow('--function: unknown function "nope"')
  })
})
