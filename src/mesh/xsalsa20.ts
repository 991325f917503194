// XSalsa20, the stream cipher of a libp2p private network (pnet: the psk), four blocks
// at a time in WebAssembly SIMD. @libp2p/pnet's cipher (the xsalsa20 package) does one
// block at a time: about 0.5 GB/s on the 2-core dev machine, a tenth of a handoff's CPU
// on each side. This one gives the same bytes (test/mesh/xsalsa20.test.ts checks it
// against that package) at about 1.1 GB/s there (1.4 GB/s without the copies in and
// out). The module is small, regular code (Salsa20's rounds unrolled), so a few lines
// here write its bytes instead of a binary being shipped.
//
// The module's one function, xor(state, data, blocks), XORs `blocks` 64-byte blocks at
// `data` in place with the key stream of the Salsa20 state at `state` (16 words, the
// block counter in words 8 and 9), four blocks per round of SIMD work (the last one may
// use fewer), and advances the counter. Memory: the state at 0, the data after it.

/** Bytes XORed per call: the module's data area. */
const chunkBytes = 64 * 1024
const dataAt = 64

/** Salsa20's double round: four quarter rounds on its columns, then four on its rows (the state's word indices). */
const doubleRoundQuarters: ReadonlyArray<readonly [number, number, number, number]> = [
  [0, 4, 8, 12],
  [5, 9, 13, 1],
  [10, 14, 2, 6],
  [15, 3, 7, 11],
  [0, 1, 2, 3],
  [5, 6, 7, 4],
  [10, 11, 8, 9],
  [15, 12, 13, 14],
]

function leb(n: number, signed = false): number[] {
  const out: number[] = []
  for (;;) {
    const byte = n & 0x7f
    n = signed ? n >> 7 : n >>> 7
    const done = signed ? (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0) : n === 0
    out.push(done ? byte : byte | 0x80)
    if (done) return out
  }
}
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body]
const vector = (items: number[][]): number[] => [...leb(items.length), ...items.flat()]
const name = (s: string): number[] => vector([...s].map((c) => [c.charCodeAt(0)]))

/** The xor function's body. Locals: 0 state, 1 data, 2 blocks (params); then i32 and v128 ones. */
function xorBody(): number[] {
  const [state, data, blocks] = [0, 1, 2]
  const [lo, n, round] = [3, 4, 5]
  const x = (i: number) => 6 + i // x0..x15: the working state, one block per lane
  const [j8, j9, t] = [22, 23, 24] // the counters' starting values; a scratch value
  const s = [24, 25, 26, 27] // transposition scratch (t is s[0]: never live together)
  const op = {
    get: (i: number) => [0x20, ...leb(i)],
    set: (i: number) => [0x21, ...leb(i)],
    tee: (i: number) => [0x22, ...leb(i)],
    i32: (v: number) => [0x41, ...leb(v, true)],
    load: (offset: number) => [0x28, 2, ...leb(offset)],
    store: (offset: number) => [0x36, 2, ...leb(offset)],
    simd: (code: number, ...rest: number[]) => [0xfd, ...leb(code), ...rest],
  }
  const v = {
    load: (offset: number) => op.simd(0x00, 0, ...leb(offset)),
    store: (offset: number) => op.simd(0x0b, 0, ...leb(offset)),
    const: (words: number[]) => op.simd(0x0c, ...words.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24])),
    shuffle: (lanes: number[]) => op.simd(0x0d, ...lanes.flatMap((l) => [l * 4, l * 4 + 1, l * 4 + 2, l * 4 + 3])),
    splat: op.simd(0x11),
    ltU: op.simd(0x3a),
    or: op.simd(0x50),
    xor: op.simd(0x51),
    shl: op.simd(0xab),
    shrU: op.simd(0xad),
    add: op.simd(0xae),
    sub: op.simd(0xb1),
  }
  // b ^= rotl(a + d, k)
  const step = (b: number, a: number, d: number, k: number) => [
    ...op.get(b),
    ...op.get(a),
    ...op.get(d),
    ...v.add,
    ...op.tee(t),
    ...op.i32(k),
    ...v.shl,
    ...op.get(t),
    ...op.i32(32 - k),
    ...v.shrU,
    ...v.or,
    ...v.xor,
    ...op.set(b),
  ]
  const quarter = (a: number, b: number, c: number, d: number) => [
    ...step(x(b), x(a), x(d), 7),
    ...step(x(c), x(b), x(a), 9),
    ...step(x(d), x(c), x(b), 13),
    ...step(x(a), x(d), x(c), 18),
  ]
  const doubleRound = doubleRoundQuarters.flatMap(([a, b, c, d]) => quarter(a, b, c, d))
  const splatWord = (i: number) => [...op.get(state), ...op.load(i * 4), ...v.splat]
  const code: number[] = []
  const emit = (...parts: number[][]) => {
    for (const p of parts) code.push(...p)
  }
  emit([0x02, 0x40], [0x03, 0x40]) // block $done, loop $next
  emit(op.get(blocks), [0x45, 0x0d, 1]) // blocks == 0: done
  emit(op.get(state), op.load(32), op.set(lo))
  for (let i = 0; i < 16; i++) if (i !== 8 && i !== 9) emit(splatWord(i), op.set(x(i)))
  // Lanes count on from the counter: low words lo + 0..3, high words plus a lane's carry.
  emit(op.get(lo), v.splat, v.const([0, 1, 2, 3]), v.add, op.tee(x(8)), op.set(j8))
  emit(splatWord(9), op.get(x(8)), op.get(lo), v.splat, v.ltU, v.sub, op.tee(x(9)), op.set(j9))
  emit(op.i32(10), op.set(round), [0x03, 0x40], doubleRound)
  emit(op.get(round), op.i32(1), [0x6b], op.tee(round), [0x0d, 0, 0x0b]) // --round: again; end
  for (let i = 0; i < 16; i++) emit(op.get(x(i)), i === 8 ? op.get(j8) : i === 9 ? op.get(j9) : splatWord(i), v.add, op.set(x(i)))
  // n = min(blocks, 4)
  emit(op.get(blocks), op.i32(4), op.get(blocks), op.i32(4), [0x49, 0x1b], op.set(n))
  // Words 4g..4g+3 of the four blocks, transposed to one vector per block, XORed into the data.
  for (let g = 0; g < 4; g++) {
    const [a, b, c, d] = [x(4 * g), x(4 * g + 1), x(4 * g + 2), x(4 * g + 3)]
    emit(op.get(a), op.get(b), v.shuffle([0, 4, 1, 5]), op.set(s[0]!))
    emit(op.get(a), op.get(b), v.shuffle([2, 6, 3, 7]), op.set(s[1]!))
    emit(op.get(c), op.get(d), v.shuffle([0, 4, 1, 5]), op.set(s[2]!))
    emit(op.get(c), op.get(d), v.shuffle([2, 6, 3, 7]), op.set(s[3]!))
    // Blocks 0..3 are (s0 lanes 0,1 + s2 lanes 0,1), (s0 2,3 + s2 2,3), the same of s1 and s3.
    const block = [
      [s[0]!, s[2]!, [0, 1, 4, 5]],
      [s[0]!, s[2]!, [2, 3, 6, 7]],
      [s[1]!, s[3]!, [0, 1, 4, 5]],
      [s[1]!, s[3]!, [2, 3, 6, 7]],
    ] as const
    // Block 0 always (n >= 1 here), blocks 1..3 only when n says so.
    for (let k = 3; k >= 0; k--) {
      const [p, q, lanes] = block[k]!
      const offset = k * 64 + g * 16
      const store = [
        ...op.get(data),
        ...op.get(data),
        ...v.load(offset),
        ...op.get(p),
        ...op.get(q),
        ...v.shuffle([...lanes]),
        ...v.xor,
        ...v.store(offset),
      ]
      if (k === 0) emit(store)
      else emit(op.get(n), op.i32(k), [0x4b, 0x04, 0x40], store, [0x0b]) // if n > k
    }
  }
  // Advance the counter by n (the low word's carry into the high one), the data and the count.
  const next = round // the rounds' counter, 0 now: the new low word
  emit(op.get(state), op.get(lo), op.get(n), [0x6a], op.tee(next), op.store(32))
  emit(op.get(state), op.get(state), op.load(36), op.get(next), op.get(lo), [0x49, 0x6a], op.store(36))
  emit(op.get(data), op.get(n), op.i32(6), [0x74, 0x6a], op.set(data))
  emit(op.get(blocks), op.get(n), [0x6b], op.set(blocks))
  emit([0x0c, 0, 0x0b, 0x0b]) // br $next; end loop; end block
  return code
}

/** The module's bytes: one function, xor(state, data, blocks), and its memory. */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const body = [
    ...vector([
      [3, 0x7f],
      [22, 0x7b],
    ]),
    ...xorBody(),
    0x0b,
  ]
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector([[0x60, ...vector([[0x7f], [0x7f], [0x7f]]), 0]])),
    ...section(3, vector([[0]])),
    ...section(5, vector([[0x00, ...leb((dataAt + chunkBytes) / 65536 + 1)]])),
    ...section(
      7,
      vector([
        [...name('memory'), 0x02, 0],
        [...name('xor'), 0x00, 0],
      ]),
    ),
    ...section(10, vector([[...leb(body.length), ...body]])),
  ])
}

interface Kernel {
  xor(state: number, data: number, blocks: number): void
  bytes: Uint8Array
  view: DataView
}
let kernel: Kernel | undefined | null
/** The compiled module, shared by every cipher (one thread: each call sets its own state first); null without WebAssembly or its SIMD. */
function getKernel(): Kernel | null {
  if (kernel !== undefined) return kernel
  if (typeof WebAssembly === 'undefined') return (kernel = null) // --jitless
  const bytes = moduleBytes()
  if (!WebAssembly.validate(bytes)) return (kernel = null)
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes))
  const memory = exports.memory as WebAssembly.Memory
  kernel = { xor: exports.xor as Kernel['xor'], bytes: new Uint8Array(memory.buffer), view: new DataView(memory.buffer) }
  return kernel
}

/** Can this runtime run the SIMD cipher? */
export function simdAvailable(): boolean {
  return getKernel() !== null
}

const sigma = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]
const word = (b: Uint8Array, i: number) => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0
const rotl = (v: number, k: number) => (v << k) | (v >>> (32 - k))

/** HSalsa20: the subkey XSalsa20 derives from the key and the nonce's first 16 bytes (once per cipher, in plain code). */
function hsalsa20(key: Uint8Array, nonce: Uint8Array): number[] {
  const x = [
    sigma[0]!,
    word(key, 0),
    word(key, 4),
    word(key, 8),
    word(key, 12),
    sigma[1]!,
    word(nonce, 0),
    word(nonce, 4),
    word(nonce, 8),
    word(nonce, 12),
    sigma[2]!,
    word(key, 16),
    word(key, 20),
    word(key, 24),
    word(key, 28),
    sigma[3]!,
  ]
  const quarter = (a: number, b: number, c: number, d: number) => {
    x[b]! ^= rotl((x[a]! + x[d]!) | 0, 7)
    x[c]! ^= rotl((x[b]! + x[a]!) | 0, 9)
    x[d]! ^= rotl((x[c]! + x[b]!) | 0, 13)
    x[a]! ^= rotl((x[d]! + x[c]!) | 0, 18)
  }
  for (let i = 0; i < 10; i++) for (const [a, b, c, d] of doubleRoundQuarters) quarter(a, b, c, d)
  return [x[0]!, x[5]!, x[10]!, x[15]!, x[6]!, x[7]!, x[8]!, x[9]!].map((w) => w >>> 0)
}

/** One direction's XSalsa20 key stream: update(bytes) returns them XORed with the stream's next bytes. */
export class XSalsa20 {
  private readonly kernel: Kernel
  /** The Salsa20 state: constants, subkey, the nonce's last 8 bytes, the block counter (words 8, 9). */
  private readonly state: number[]
  /** The rest of the last block's key stream, from `used`. */
  private readonly stream = new Uint8Array(64)
  private used = 64

  /** `firstBlock`: where the stream starts, in 64-byte blocks (0: its beginning, as pnet uses it). */
  constructor(nonce: Uint8Array, key: Uint8Array, firstBlock = 0) {
    const kernel = getKernel()
    if (kernel === null) throw new Error('XSalsa20: this runtime has no WebAssembly SIMD')
    if (nonce.byteLength !== 24 || key.byteLength !== 32) throw new Error('XSalsa20 takes a 24-byte nonce and a 32-byte key')
    this.kernel = kernel
    const sub = hsalsa20(key, nonce)
    this.state = [
      sigma[0]!,
      ...sub.slice(0, 4),
      sigma[1]!,
      word(nonce, 16),
      word(nonce, 20),
      firstBlock % 2 ** 32,
      Math.floor(firstBlock / 2 ** 32),
      sigma[2]!,
      ...sub.slice(4),
      sigma[3]!,
    ]
  }

  update(input: Uint8Array): Uint8Array {
    const n = input.byteLength
    const out = Buffer.allocUnsafe(n)
    let i = 0
    while (this.used < 64 && i < n) out[i] = input[i++]! ^ this.stream[this.used++]!
    const { bytes } = this.kernel
    while (n - i >= 64) {
      const length = Math.min(chunkBytes, (n - i) & ~63)
      bytes.set(input.subarray(i, i + length), dataAt)
      this.run(length / 64)
      out.set(bytes.subarray(dataAt, dataAt + length), i)
      i += length
    }
    if (i < n) {
      bytes.fill(0, dataAt, dataAt + 64)
      this.run(1)
      this.stream.set(bytes.subarray(dataAt, dataAt + 64))
      this.used = 0
      while (i < n) out[i] = input[i++]! ^ this.stream[this.used++]!
    }
    return out
  }

  /** XOR `blocks` blocks at the data area with the key stream; the counter moves on by as many. */
  private run(blocks: number): void {
    const { view, xor } = this.kernel
    for (let w = 0; w < 16; w++) view.setUint32(w * 4, this.state[w]!, true)
    xor(0, dataAt, blocks)
    this.state[8] = view.getUint32(32, true)
    this.state[9] = view.getUint32(36, true)
  }
}
