/** Validation for what clients store: text PostgreSQL can keep byte for byte, and JSON it can keep as jsonb. */
import * as z from 'zod'

const NUL = /\u0000/

/**
 * Text up to `max` characters that round-trips exactly: no NUL (PostgreSQL text cannot hold it) and no
 * lone surrogate halves (they cannot be encoded as UTF-8, so they would come back changed).
 */
export const safeText = (max: number, min = 0) =>
  z
    .string()
    .min(min, min === 1 ? 'must not be empty' : `must be at least ${min} characters`)
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !NUL.test(s), 'must not contain NUL characters')
    .refine((s) => s.isWellFormed(), 'must be valid Unicode (no lone surrogates)')

/** Any JSON value up to `maxBytes` serialized, with no NUL in any string (jsonb refuses it). */
export const safeJson = (maxBytes: number) =>
  z.unknown().superRefine((value, ctx) => {
    const text = JSON.stringify(value)
    if (text === undefined) return
    if (new TextEncoder().encode(text).byteLength > maxBytes)
      ctx.addIssue({ code: 'custom', message: `must be at most ${maxBytes} bytes of JSON` })
    if (text.includes('\\u0000')) ctx.addIssue({ code: 'custom', message: 'must not contain NUL characters' })
    if (!wellFormed(value)) ctx.addIssue({ code: 'custom', message: 'must be valid Unicode (no lone surrogates)' })
  })

// JSON.stringify escapes lone surrogates, so the strings themselves (keys too) are checked.
const wellFormed = (value: unknown, depth = 0): boolean => {
  if (typeof value === 'string') return value.isWellFormed()
  if (depth > 64 || value === null || typeof value !== 'object') return true
  if (Array.isArray(value)) return value.every((v) => wellFormed(v, depth + 1))
  return Object.entries(value).every(([k, v]) => k.isWellFormed() && wellFormed(v, depth + 1))
}
