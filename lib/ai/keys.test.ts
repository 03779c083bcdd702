/** Gateway key material: format, entropy, hashing, constant-time comparison. */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { scrub } from '../log.ts'
import { KEY_PATTERN, displayPrefix, generateKey, hashKey, timingSafeEqualStrings } from './keys.ts'

describe('gateway keys', () => {
  it('are nx- and 43 base64url characters, all different, and scrubbed from logs', () => {
    const keys = new Set(Array.from({ length: 1000 }, generateKey))
    expect(keys.size).toBe(1000)
    for (const k of keys) expect(k).toMatch(KEY_PATTERN)
    const k = [...keys][0]!
    expect(scrub(`auth with ${k}`)).not.toContain(k)
    expect(displayPrefix(k)).toHaveLength(9)
  })

  it('are stored as their SHA-256, hex', () => {
    const k = generateKey()
    expect(hashKey(k)).toBe(createHash('sha256').update(k).digest('hex'))
  })

  it('compare equal only when equal, whatever the lengths', () => {
    expect(timingSafeEqualStrings('master-key-123456', 'master-key-123456')).toBe(true)
    expect(timingSafeEqualStrings('master-key-123456', 'master-key-123457')).toBe(false)
    expect(timingSafeEqualStrings('short', 'master-key-123456')).toBe(false)
    expect(timingSafeEqualStrings('master-key-123456-and-more', 'master-key-123456')).toBe(false)
    expect(timingSafeEqualStrings('', 'master-key-123456')).toBe(false)
    // A presented value that repeats a prefix of the secret is no match.
    expect(timingSafeEqualStrings('ab', 'abab')).toBe(false)
  })
})
