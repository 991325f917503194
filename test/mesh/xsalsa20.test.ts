// The mesh's XSalsa20 (src/mesh/xsalsa20.ts) against the xsalsa20 package, the cipher
// @libp2p/pnet uses: the same key stream, however the bytes are cut into updates, from
// the stream's start and across the block counter's 32-bit carry, which a long-lived
// connection reaches after 256 GiB.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { XSalsa20, simdAvailable } from '../../src/mesh/xsalsa20.js'

interface Reference {
  update(input: Uint8Array): Uint8Array
  /** The package's WebAssembly state: its first 8 bytes at _pointer are the block counter. */
  _xor: { _memory: Uint8Array; _pointer: number }
}
const reference = createRequire(import.meta.url)('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => Reference

/** `total` bytes cut into updates of random sizes, some far over the 64 KiB the cipher takes per call. */
function cuts(total: number): number[] {
  const sizes: number[] = []
  for (let left = total; left > 0; ) {
    const size = Math.min(left, [1, 63, 64, 65, 1000, 70_000, 200_000][Math.floor(Math.random() * 7)]!)
    sizes.push(size)
    left -= size
  }
  return sizes
}

describe('XSalsa20', () => {
  it('runs here (WebAssembly SIMD); without it the mesh would use @libp2p/pnet itself', () => {
    expect(simdAvailable()).toBe(true)
  })

  it('gives the same bytes as the xsalsa20 package, however the input is cut', () => {
    for (let round = 0; round < 20; round++) {
      const [nonce, key] = [randomBytes(24), randomBytes(32)]
      const [ours, theirs] = [new XSalsa20(nonce, key), reference(nonce, key)]
      for (const size of cuts(600_000)) {
        const input = randomBytes(size)
        expect(
          Buffer.from(ours.update(input)).equals(Buffer.from(theirs.update(input))),
          `round ${round}, an update of ${size} bytes`,
        ).toBe(true)
      }
    }
  })

  it('counts blocks past 2^32 (the counter is 64 bits) as the xsalsa20 package does', () => {
    const [nonce, key] = [randomBytes(24), randomBytes(32)]
    const first = 2 ** 32 - 3
    const theirs = reference(nonce, key)
    const { _memory: memory, _pointer: at } = theirs._xor
    new DataView(memory.buffer, memory.byteOffset + at, 8).setBigUint64(0, BigInt(first), true)
    const input = randomBytes(64 * 9 + 17)
    const expected = Buffer.from(theirs.update(input))
    expect(Buffer.from(new XSalsa20(nonce, key, first).update(input)).equals(expected)).toBe(true)
    // And the reference's counter is the one it seems: block 5 of a fresh stream is where its sixth 64 bytes are.
    const fresh = reference(nonce, key)
      .update(new Uint8Array(64 * 6))
      .subarray(64 * 5)
    expect(Buffer.from(new XSalsa20(nonce, key, 5).update(new Uint8Array(64))).equals(Buffer.from(fresh))).toBe(true)
  })

  it('refuses a nonce or key of the wrong size', () => {
    expect(() => new XSalsa20(randomBytes(16), randomBytes(32))).toThrow(/24-byte nonce/)
    expect(() => new XSalsa20(randomBytes(24), randomBytes(16))).toThrow(/32-byte key/)
  })
})
