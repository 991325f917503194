// Noise's ChaCha20-Poly1305 for the mesh: @libp2p/noise's own (defaultCrypto), but for
// one cost. Its Node path passes the raw key to createCipheriv for every message, and
// Node turns it into a key object each time: measured here at about 12 us a message,
// three times the cipher's own work on a small one and a sixth of it on a full 64 KB
// one. A connection's key is one Uint8Array for its life (CipherState.k), so its key
// object is made once and kept beside it (a WeakMap: it goes with the connection).
// Small messages keep the WebAssembly path, quicker below about 512 bytes. Same wire
// format, same ciphers: only where the key is prepared differs.
import { defaultCrypto } from '@libp2p/noise/crypto'
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'

type Crypto = typeof defaultCrypto
type Bytes = Parameters<Crypto['chaCha20Poly1305Encrypt']>[0]

const algorithm = 'chacha20-poly1305'
const tagBytes = 16
/** Below this many bytes the WebAssembly cipher is quicker than Node's, even with a kept key (measured). */
const nodeFrom = 512

const keys = new WeakMap<Uint8Array, KeyObject>()
function keyObject(k: Uint8Array): KeyObject {
  let key = keys.get(k)
  if (key === undefined) {
    key = createSecretKey(k)
    keys.set(k, key)
  }
  return key
}

/** The chunks of `bytes`: itself, or the pieces of a Uint8ArrayList (iterable, without a copy). */
const chunks = (bytes: Bytes): Iterable<Uint8Array> => (bytes instanceof Uint8Array ? [bytes] : bytes)

export const meshNoiseCrypto: Crypto = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    if (plaintext.byteLength < nodeFrom) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const cipher = createCipheriv(algorithm, keyObject(k), nonce, { authTagLength: tagBytes })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const out: Buffer[] = []
    for (const chunk of chunks(plaintext)) out.push(cipher.update(chunk))
    out.push(cipher.final(), cipher.getAuthTag())
    return Buffer.concat(out, plaintext.byteLength + tagBytes)
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    if (ciphertext.byteLength < nodeFrom) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    const textBytes = ciphertext.byteLength - tagBytes
    const decipher = createDecipheriv(algorithm, keyObject(k), nonce, { authTagLength: tagBytes })
    decipher.setAAD(ad, { plaintextLength: textBytes })
    decipher.setAuthTag(ciphertext.subarray(textBytes))
    const text = ciphertext instanceof Uint8Array ? ciphertext.subarray(0, textBytes) : ciphertext.sublist(0, textBytes)
    const out: Buffer[] = []
    for (const chunk of chunks(text)) out.push(decipher.update(chunk))
    out.push(decipher.final())
    return out.length === 2 && out[1]!.byteLength === 0 ? out[0]! : Buffer.concat(out, textBytes)
  },
}
