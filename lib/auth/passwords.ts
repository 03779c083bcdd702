/** Password hashing with bcrypt (bcryptjs: pure JavaScript, so the same code hashes on Node and on workerd). */
import bcrypt from 'bcryptjs'
import { ApiError } from '../errors.ts'

/** bcrypt cost: 2^12 rounds, about 0.4-0.6 s per hash or check in bcryptjs on this project's machines. */
export const BCRYPT_COST = 12
export const MIN_PASSWORD_CHARS = 8
/** bcrypt reads at most 72 bytes; longer passwords would be silently truncated, so they are refused. */
export const MAX_PASSWORD_BYTES = 72

// A cost-12 hash of a random string nobody knows. Checked against when the username does not exist, so a
// login takes as long for an unknown user as for a known one (no username enumeration by timing).
const DUMMY_HASH = '$2b$12$8nsLj8YynNCLGxDUT3Ttj.btHzj.6P8BHRiNgm2sSLsI00MClhzZC'

const utf8Length = (s: string) => new TextEncoder().encode(s).byteLength

/** Why a new password is refused, or undefined when it is acceptable. */
export const passwordProblem = (password: string): string | undefined => {
  if ([...password].length < MIN_PASSWORD_CHARS) return `must be at least ${MIN_PASSWORD_CHARS} characters`
  if (utf8Length(password) > MAX_PASSWORD_BYTES) return `must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt's limit)`
  return undefined
}

/** Throws a 400 naming `param` when a password may not be set. */
export const assertPasswordPolicy = (password: string, param = 'password'): void => {
  const problem = passwordProblem(password)
  if (problem) throw new ApiError(400, 'VALIDATION_FAILED', `${param}: ${problem}`, { param })
}

/** True when a password is too long for bcrypt to check whole; such a login is refused before any check. */
export const passwordTooLong = (password: string): boolean => utf8Length(password) > MAX_PASSWORD_BYTES

/** Hashes a password that passed {@link assertPasswordPolicy}. */
export const hashPassword = async (password: string): Promise<string> => {
  if (passwordTooLong(password)) throw new Error('password over 72 bytes reached hashPassword')
  return bcrypt.hash(password, BCRYPT_COST)
}

/**
 * Checks a password against a stored hash. With no hash (unknown or disabled user) it still runs a full
 * bcrypt check against a dummy hash and returns false, so both cases cost the same time.
 */
export const verifyPassword = async (password: string, hash: string | undefined): Promise<boolean> => {
  if (passwordTooLong(password)) return false
  if (!hash) {
    await bcrypt.compare(password, DUMMY_HASH)
    return false
  }
  return bcrypt.compare(password, hash)
}
