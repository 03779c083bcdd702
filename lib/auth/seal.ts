/**
 * Encryption at rest of signing keys: AES-256-GCM (WebCrypto) under a key-encryption key (KEK) derived
 * with HKDF-SHA-256 from NEXUS_KEY_ENCRYPTION_KEY, else from NEXUS_MASTER_KEY. The hosts supply
 * NEXUS_KEY_ENCRYPTION_KEY from `<NEXUS_DATA_DIR>/auth/kek` (mode 0600) when neither is set.
 */
import type { JWK } from 'jose'
import type { Config } from '../env.ts'

const FORMAT = 'v1'
const enc = new TextEncoder()

const b64url = (bytes: Uint8Array) => {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
const fromB64url = (text: string): Uint8Array<ArrayBuffer> => {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const out = new Uint8Array(new ArrayBuffer(s.length))
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

/** The KEK could not open a sealed key: another KEK sealed it, or the data was altered. */
export class KeyEncryptionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'KeyEncryptionError'
  }
}

interface Kek {
  key: CryptoKey
  /** A public fingerprint of the KEK (HKDF output, not the key), stored with each sealed key to name mismatches. */
  id: string
}

const material = (config: Config): { ikm: Uint8Array<ArrayBuffer>; source: string } => {
  if (config.NEXUS_KEY_ENCRYPTION_KEY) return { ikm: fromB64url(config.NEXUS_KEY_ENCRYPTION_KEY.trim().replace(/=+$/, '')), source: 'kek' }
  if (config.NEXUS_MASTER_KEY) return { ikm: enc.encode(config.NEXUS_MASTER_KEY), source: 'master' }
  throw new KeyEncryptionError(
    'no key-encryption key: set NEXUS_KEY_ENCRYPTION_KEY (32 random bytes, base64) or NEXUS_MASTER_KEY, or run under a NEXUS host, which keeps one in NEXUS_DATA_DIR',
  )
}

// Derived keys by input material, per process/isolate: HKDF runs once, not per sealed key.
const derived = new Map<string, Promise<Kek>>()

const deriveKek = async (config: Config): Promise<Kek> => {
  const { ikm, source } = material(config)
  const cacheKey = `${source}:${b64url(ikm)}`
  let kek = derived.get(cacheKey)
  if (!kek) {
    kek = (async () => {
      const base = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveKey', 'deriveBits'])
      const hkdf = (info: string) => ({ name: 'HKDF', hash: 'SHA-256', salt: enc.encode('nexus/signing-keys'), info: enc.encode(info) })
      const key = await crypto.subtle.deriveKey(hkdf('aes-256-gcm v1'), base, { name: 'AES-GCM', length: 256 }, false, [
        'encrypt',
        'decrypt',
      ])
      const id = b64url(new Uint8Array(await crypto.subtle.deriveBits(hkdf('kek fingerprint v1'), base, 64)))
      return { key, id }
    })()
    derived.set(cacheKey, kek)
    kek.catch(() => derived.delete(cacheKey))
  }
  return kek
}

/** The current KEK's public fingerprint (for messages and docs; reveals nothing about the key). */
export const kekFingerprint = async (config: Config): Promise<string> => (await deriveKek(config)).id

// The key id is authenticated data: a sealed key copied onto another row does not open.
const aad = (kid: string) => enc.encode(`nexus-signing-key:${kid}`)

/** Encrypts a private JWK for storage: `v1.<kek fingerprint>.<iv>.<ciphertext>`, base64url parts. */
export const sealPrivateKey = async (config: Config, kid: string, jwk: JWK): Promise<string> => {
  const kek = await deriveKek(config)
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad(kid) }, kek.key, enc.encode(JSON.stringify(jwk)))
  return [FORMAT, kek.id, b64url(iv), b64url(new Uint8Array(ct))].join('.')
}

/** Decrypts a sealed private JWK; throws {@link KeyEncryptionError} naming both KEK fingerprints on a mismatch. */
export const openPrivateKey = async (config: Config, kid: string, sealed: string): Promise<JWK> => {
  const kek = await deriveKek(config)
  const [format, kekId, iv, ct] = sealed.split('.')
  if (format !== FORMAT || !kekId || !iv || !ct) throw new KeyEncryptionError(`signing key ${kid} is not in a known sealed format`)
  if (kekId !== kek.id)
    throw new KeyEncryptionError(
      `signing key ${kid} was sealed under key-encryption key ${kekId}, but this process has ${kek.id}: give every process the same NEXUS_KEY_ENCRYPTION_KEY (or NEXUS_MASTER_KEY), or, if the old one is lost, run \`npm run auth:rotate\` to make a new signing key`,
    )
  try {
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromB64url(iv), additionalData: aad(kid) },
      kek.key,
      fromB64url(ct),
    )
    return JSON.parse(new TextDecoder().decode(plain)) as JWK
  } catch {
    throw new KeyEncryptionError(`signing key ${kid} does not decrypt: the stored data was altered`)
  }
}
