// The mesh's Noise cipher (src/mesh/noise-crypto.ts) is @libp2p/noise's own with the key
// prepared once: what one seals the other opens, either way, for messages below and
// above the size where it hands over to Node's cipher, whole or in pieces (a
// Uint8ArrayList, as Noise passes them), and a tampered message is refused.
import { defaultCrypto } from '@libp2p/noise/crypto'
import { randomBytes } from 'node:crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { meshNoiseCrypto } from '../../src/mesh/noise-crypto.js'

const bytes = (b: Uint8Array | Uint8ArrayList) => Buffer.from(b.subarray())

describe("the mesh's Noise cipher", () => {
  it('seals and opens as @libp2p/noise does, both ways, whole or in pieces', () => {
    const key = randomBytes(32)
    for (const size of [0, 1, 511, 512, 513, 1199, 1200, 4096, 65_519]) {
      const [nonce, ad, text] = [randomBytes(12), randomBytes(size % 3 === 0 ? 0 : 32), randomBytes(size)]
      const pieces = new Uint8ArrayList(text.subarray(0, size >> 1), text.subarray(size >> 1))
      for (const plain of [text, pieces]) {
        const ours = bytes(meshNoiseCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key))
        expect(ours.equals(bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key))), `${size} bytes sealed`).toBe(true)
        const sealed = new Uint8ArrayList(ours.subarray(0, 7), ours.subarray(7))
        for (const box of [ours, sealed]) {
          expect(bytes(meshNoiseCrypto.chaCha20Poly1305Decrypt(box, nonce, ad, key)).equals(text), `${size} bytes opened`).toBe(true)
          expect(bytes(defaultCrypto.chaCha20Poly1305Decrypt(box, nonce, ad, key)).equals(text)).toBe(true)
        }
      }
    }
  })

  it('refuses a message whose bytes or tag were changed', () => {
    const [key, nonce, text] = [randomBytes(32), randomBytes(12), randomBytes(4096)]
    const sealed = Buffer.from(meshNoiseCrypto.chaCha20Poly1305Encrypt(text, nonce, new Uint8Array(0), key).subarray())
    for (const at of [0, 2000, sealed.length - 1]) {
      const bad = Buffer.from(sealed)
      bad[at]! ^= 1
      expect(() => meshNoiseCrypto.chaCha20Poly1305Decrypt(bad, nonce, new Uint8Array(0), key)).toThrow()
    }
  })
})
