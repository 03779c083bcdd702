/** The password policy and bcrypt: cost 12, the 72-byte limit refused, unknown users checked against a dummy hash. */
import bcrypt from 'bcryptjs'
import { describe, expect, it, vi } from 'vitest'
import { ApiError } from '../errors.ts'
import { assertPasswordPolicy, hashPassword, passwordProblem, passwordTooLong, verifyPassword } from './passwords.ts'

describe('password policy', () => {
  it('wants 8 characters (not bytes) and at most 72 bytes', () => {
    expect(passwordProblem('1234567')).toMatch(/at least 8/)
    expect(passwordProblem('12345678')).toBeUndefined()
    expect(passwordProblem('ü'.repeat(8))).toBeUndefined() // 8 characters, 16 bytes
    expect(passwordProblem('x'.repeat(72))).toBeUndefined()
    expect(passwordProblem('x'.repeat(73))).toMatch(/72 bytes/)
    expect(passwordProblem('€'.repeat(25))).toMatch(/72 bytes/) // 25 characters, 75 bytes
    expect(passwordTooLong('€'.repeat(24))).toBe(false) // 72 bytes
  })

  it('throws a 400 naming the field', () => {
    const err = (() => {
      try {
        assertPasswordPolicy('short', 'new_password')
      } catch (e) {
        return e
      }
    })() as ApiError
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', param: 'new_password' })
  })
})

describe('bcrypt', () => {
  it('hashes with cost 12 and checks', async () => {
    const hash = await hashPassword('correct horse battery')
    expect(hash).toMatch(/^\$2b\$12\$/)
    expect(await verifyPassword('correct horse battery', hash)).toBe(true)
    expect(await verifyPassword('correct horse batterx', hash)).toBe(false)
  })

  it('never accepts a password that only matches in its first 72 bytes', async () => {
    const base = 'p'.repeat(72)
    const hash = await hashPassword(base)
    expect(await verifyPassword(base + 'anything', hash)).toBe(false)
    await expect(hashPassword(base + 'x')).rejects.toThrow()
  })

  it('returns false for an unknown user after a full cost-12 check against a dummy hash', async () => {
    const compare = vi.spyOn(bcrypt, 'compare')
    try {
      expect(await verifyPassword('whatever-it-is', undefined)).toBe(false)
      expect(compare).toHaveBeenCalledTimes(1)
      expect(compare.mock.calls[0]![1]).toMatch(/^\$2b\$12\$/)
    } finally {
      compare.mockRestore()
    }
  })
})
