/** Sealing private keys at rest: round trip, KEK mismatch named, tampering and row swaps refused. */
import { exportJWK, generateKeyPair } from 'jose'
import { describe, expect, it } from 'vitest'
import { parseEnv } from '../env.ts'
import { kekFingerprint, KeyEncryptionError, openPrivateKey, sealPrivateKey } from './seal.ts'

const kek = (byte: number) => Buffer.from(new Uint8Array(32).fill(byte)).toString('base64')
const configWith = (env: Record<string, string>) => parseEnv(env)

describe('sealPrivateKey / openPrivateKey', async () => {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = await exportJWK(privateKey)

  it('round-trips a private JWK, and the sealed form shows none of it', async () => {
    const config = configWith({ NEXUS_KEY_ENCRYPTION_KEY: kek(1) })
    const sealed = await sealPrivateKey(config, 'kid-1', jwk)
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/)
    for (const f of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) expect(sealed).not.toContain(String(jwk[f]).slice(0, 16))
    expect(await openPrivateKey(config, 'kid-1', sealed)).toEqual(jwk)
  })

  it('uses a fresh IV each time', async () => {
    const config = configWith({ NEXUS_KEY_ENCRYPTION_KEY: kek(1) })
    expect(await sealPrivateKey(config, 'k', jwk)).not.toBe(await sealPrivateKey(config, 'k', jwk))
  })

  it('names both fingerprints when another KEK sealed the key', async () => {
    const sealed = await sealPrivateKey(configWith({ NEXUS_KEY_ENCRYPTION_KEY: kek(1) }), 'kid-1', jwk)
    const other = configWith({ NEXUS_KEY_ENCRYPTION_KEY: kek(2) })
    const err = await openPrivateKey(other, 'kid-1', sealed).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KeyEncryptionError)
    expect((err as Error).message).toContain(await kekFingerprint(configWith({ NEXUS_KEY_ENCRYPTION_KEY: kek(1) })))
    expect((err as Error).message).toContain(await kekFingerprint(other))
  })

  it('refuses a sealed key moved to another kid, or altered', async () => {
    const config = configWith({ NEXUS_KEY_ENCRYPTION_KEY: kek(1) })
    const sealed = await sealPrivateKey(config, 'kid-1', jwk)
    await expect(openPrivateKey(config, 'kid-2', sealed)).rejects.toThrow(/altered/)
    const parts = sealed.split('.')
    const ct = parts[3]!
    parts[3] = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1)
    await expect(openPrivateKey(config, 'kid-1', parts.join('.'))).rejects.toThrow(/altered/)
  })

  it('derives the KEK from NEXUS_MASTER_KEY when no NEXUS_KEY_ENCRYPTION_KEY is set; the dedicated key wins', async () => {
    const master = configWith({ NEXUS_MASTER_KEY: 'a-master-key-of-sufficient-length' })
    const both = configWith({ NEXUS_MASTER_KEY: 'a-master-key-of-sufficient-length', NEXUS_KEY_ENCRYPTION_KEY: kek(3) })
    const sealed = await sealPrivateKey(master, 'k', jwk)
    expect(await openPrivateKey(master, 'k', sealed)).toEqual(jwk)
    expect(await kekFingerprint(both)).toBe(await kekFingerprint(configWith({ NEXUS_KEY_ENCRYPTION_KEY: kek(3) })))
    expect(await kekFingerprint(both)).not.toBe(await kekFingerprint(master))
  })

  it('refuses to work with no KEK at all', async () => {
    await expect(sealPrivateKey(configWith({}), 'k', jwk)).rejects.toThrow(/NEXUS_KEY_ENCRYPTION_KEY/)
  })
})
