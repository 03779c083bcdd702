/**
 * The key-encryption key (KEK) that seals signing keys at rest, for hosts given neither
 * NEXUS_KEY_ENCRYPTION_KEY nor NEXUS_MASTER_KEY: 32 random bytes kept in `<NEXUS_DATA_DIR>/auth/kek`
 * (directory 0700, file 0600), passed to every function as the NEXUS_KEY_ENCRYPTION_KEY binding.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

export type Env = Record<string, string | undefined>

const blank = (v: string | undefined) => v === undefined || v.trim() === ''

/** Where the KEK file of a data directory lives. */
export const kekPath = (dataDir: string) => join(resolve(dataDir), 'auth', 'kek')

const readKek = (path: string): string => {
  const value = readFileSync(path, 'utf8').trim()
  if (Buffer.from(value, 'base64').byteLength !== 32) throw new Error(`${path}: not a 32-byte base64 key-encryption key`)
  // Tighten permissions left loose by hand (a copy, a restore): the file guards every signing key.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
  return value
}

/**
 * Returns `env` with NEXUS_KEY_ENCRYPTION_KEY filled in from the data directory's KEK file, creating
 * the file on first use. Left unchanged when NEXUS_KEY_ENCRYPTION_KEY is set, or when NEXUS_MASTER_KEY
 * is set and no KEK file exists (the functions then derive the KEK from the master key). An existing file
 * wins over NEXUS_MASTER_KEY, so adding a master key later does not orphan keys sealed under the file.
 */
export const withKeyEncryptionKey = (env: Env, onCreate?: (path: string) => void): Env => {
  if (!blank(env.NEXUS_KEY_ENCRYPTION_KEY)) return env
  const dataDir = blank(env.NEXUS_DATA_DIR) ? './data' : env.NEXUS_DATA_DIR!
  // An in-memory database keeps nothing, so neither does its KEK.
  if (dataDir === 'memory://')
    return blank(env.NEXUS_MASTER_KEY) ? { ...env, NEXUS_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') } : env
  const path = kekPath(dataDir)
  try {
    return { ...env, NEXUS_KEY_ENCRYPTION_KEY: readKek(path) }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (!blank(env.NEXUS_MASTER_KEY)) return env
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const value = randomBytes(32).toString('base64')
  try {
    // 'wx': of two processes starting at once, one writes and the other reads what it wrote.
    writeFileSync(path, `${value}\n`, { mode: 0o600, flag: 'wx' })
    onCreate?.(path)
    return { ...env, NEXUS_KEY_ENCRYPTION_KEY: value }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  // Another process created it a moment ago: give it a little time to finish writing.
  for (let attempt = 0; ; attempt++) {
    try {
      return { ...env, NEXUS_KEY_ENCRYPTION_KEY: readKek(path) }
    } catch (err) {
      if (attempt >= 20) throw err
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
    }
  }
}
