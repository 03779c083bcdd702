/** The hosts' key-encryption key file: created once with mode 0600, reused, and when it is (not) used. */
import { mkdtempSync, readFileSync, rmSync, statSync, chmodSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { kekPath, withKeyEncryptionKey } from './kek.ts'

const root = mkdtempSync(join(tmpdir(), 'nexus-kek-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let n = 0
const dir = () => join(root, String(n++))

describe('withKeyEncryptionKey', () => {
  it('creates <data dir>/auth/kek with 32 random bytes, file 0600 and directory 0700, then reuses it', () => {
    const d = dir()
    const created: string[] = []
    const env = withKeyEncryptionKey({ NEXUS_DATA_DIR: d }, (p) => created.push(p))
    expect(created).toEqual([kekPath(d)])
    expect(Buffer.from(env.NEXUS_KEY_ENCRYPTION_KEY!, 'base64').byteLength).toBe(32)
    expect(statSync(kekPath(d)).mode & 0o777).toBe(0o600)
    expect(statSync(dirname(kekPath(d))).mode & 0o777).toBe(0o700)
    expect(readFileSync(kekPath(d), 'utf8').trim()).toBe(env.NEXUS_KEY_ENCRYPTION_KEY)
    const again = withKeyEncryptionKey({ NEXUS_DATA_DIR: d }, (p) => created.push(p))
    expect(again.NEXUS_KEY_ENCRYPTION_KEY).toBe(env.NEXUS_KEY_ENCRYPTION_KEY)
    expect(created).toHaveLength(1)
  })

  it('leaves an explicit NEXUS_KEY_ENCRYPTION_KEY alone and writes nothing', () => {
    const d = dir()
    const given = { NEXUS_DATA_DIR: d, NEXUS_KEY_ENCRYPTION_KEY: 'x'.repeat(44) }
    expect(withKeyEncryptionKey(given)).toBe(given)
    expect(() => statSync(kekPath(d))).toThrow()
  })

  it('with NEXUS_MASTER_KEY and no file, writes nothing (the KEK derives from the master key)', () => {
    const d = dir()
    const env = withKeyEncryptionKey({ NEXUS_DATA_DIR: d, NEXUS_MASTER_KEY: 'a-master-key-long-enough' })
    expect(env.NEXUS_KEY_ENCRYPTION_KEY).toBeUndefined()
    expect(() => statSync(kekPath(d))).toThrow()
  })

  it('prefers an existing file to NEXUS_MASTER_KEY, so adding a master key later orphans nothing', () => {
    const d = dir()
    const first = withKeyEncryptionKey({ NEXUS_DATA_DIR: d })
    const later = withKeyEncryptionKey({ NEXUS_DATA_DIR: d, NEXUS_MASTER_KEY: 'a-master-key-long-enough' })
    expect(later.NEXUS_KEY_ENCRYPTION_KEY).toBe(first.NEXUS_KEY_ENCRYPTION_KEY)
  })

  it('tightens loose permissions and refuses a file that is not a 32-byte key', () => {
    const d = dir()
    withKeyEncryptionKey({ NEXUS_DATA_DIR: d })
    chmodSync(kekPath(d), 0o644)
    withKeyEncryptionKey({ NEXUS_DATA_DIR: d })
    expect(statSync(kekPath(d)).mode & 0o777).toBe(0o600)
    const bad = dir()
    mkdirSync(dirname(kekPath(bad)), { recursive: true })
    writeFileSync(kekPath(bad), 'too-short')
    expect(() => withKeyEncryptionKey({ NEXUS_DATA_DIR: bad })).toThrow(/32-byte/)
  })
})
