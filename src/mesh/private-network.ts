// The mesh's private network (mesh.psk), in one of two modes per connection, chosen by
// the nonces the two sides send first (the wire format: design.md, "The mesh's key"):
// - pnet, byte for byte as @libp2p/pnet speaks it, so a node talks with any libp2p host
//   holding the key, an older binge included: everything after the nonces is XORed with
//   XSalsa20 (xsalsa20.ts, four blocks at a time), and Noise runs inside.
// - bound, between two nodes of this version: the nonces carry a mark and the two sides
//   prove the psk to each other, then Noise alone encrypts, with a prologue made from
//   the psk and both nonces, so its handshake completes only between two psk holders
//   that saw the same nonces. One cipher instead of two: a quarter to a third less CPU
//   per byte in bench/transport.ts.
// A runtime without WebAssembly SIMD gets @libp2p/pnet itself, and so never binds.
import type { AbortOptions, ConnectionEncrypter, ConnectionProtector, Logger, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import { noise, type NoiseInit } from '@libp2p/noise'
import { preSharedKey } from '@libp2p/pnet'
import { AbstractMultiaddrConnection, byteStream, type SendResult } from '@libp2p/utils'
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { XSalsa20, simdAvailable } from './xsalsa20.js'

const nonceBytes = 24
/** A bound-mode nonce: this many random bytes, then the mark. */
const nonceRandomBytes = 16
const proofBytes = 16
/** How long the nonces' exchange may take when the caller gives no deadline (@libp2p/pnet's default). */
const exchangeTimeoutMs = 1_000
const swarmKeyHeader = '/key/swarm/psk/1.0.0/'

/**
 * The 32-byte key of a psk as mesh.psk takes it: a swarm key file's text, 64 hex digits
 * (used as they are), or any other text, a passphrase hashed to a key, so
 * `BINGE_MESH_KEY=correct-horse` works too.
 */
export function pskKey(psk: string): Buffer {
  const text = psk.trim()
  const hex = text.startsWith(swarmKeyHeader) ? (text.split(/\r?\n/)[2] ?? '').trim() : text
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return Buffer.from(hex, 'hex')
  if (text.startsWith(swarmKeyHeader)) throw new Error('mesh.psk: a swarm key file holds 64 hex digits on its third line')
  return createHash('sha256').update(text).digest()
}

/** The same key as @libp2p/pnet reads it: a swarm key file's text (version 1, base16). */
export function swarmKey(psk: string): Uint8Array {
  return new TextEncoder().encode(`${swarmKeyHeader}\n/base16/\n${pskKey(psk).toString('hex')}`)
}

/** A connection after the nonces: what goes out is XORed with `outbound`, what comes in with `inbound`. */
class PrivateConnection extends AbstractMultiaddrConnection {
  constructor(
    private readonly inner: MultiaddrConnection,
    inbound: XSalsa20,
    private readonly outbound: XSalsa20,
    log: Logger,
  ) {
    super({ remoteAddr: inner.remoteAddr, direction: inner.direction, log })
    inner.addEventListener('message', ({ data }) => {
      if (data instanceof Uint8Array) this.onData(inbound.update(data))
      else for (const chunk of data) this.onData(inbound.update(chunk))
    })
    inner.addEventListener('drain', () => this.onMuxerDrain())
    inner.addEventListener('close', (event) => {
      if (event.error == null) this.onTransportClosed()
      else if (event.local) this.abort(event.error)
      else this.onRemoteReset()
    })
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.inner.close(options)
  }

  sendData(data: Parameters<AbstractMultiaddrConnection['sendData']>[0]): SendResult {
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(this.outbound.update(data.subarray())) }
  }

  sendReset(err: Error): void {
    this.inner.abort(err)
  }

  sendPause(): void {
    this.inner.pause()
  }

  sendResume(): void {
    this.inner.resume()
  }
}

const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => {
  const h = createHmac('sha256', key)
  for (const part of parts) h.update(part)
  return h.digest()
}

/** The keys bound mode derives from the psk, one per use. */
interface BoundKeys {
  mark: Buffer
  proof: Buffer
  prologue: Buffer
}

function boundKeys(key: Uint8Array): BoundKeys {
  return {
    mark: hmac(key, Buffer.from('binge/psk-bound/mark')),
    proof: hmac(key, Buffer.from('binge/psk-bound/proof')),
    prologue: hmac(key, Buffer.from('binge/psk-bound/prologue')),
  }
}

function markedNonce(keys: BoundKeys): Buffer {
  const random = randomBytes(nonceRandomBytes)
  return Buffer.concat([random, hmac(keys.mark, random).subarray(0, nonceBytes - nonceRandomBytes)])
}

function isMarked(nonce: Uint8Array, keys: BoundKeys): boolean {
  const mark = hmac(keys.mark, nonce.subarray(0, nonceRandomBytes)).subarray(0, nonceBytes - nonceRandomBytes)
  return timingSafeEqual(nonce.subarray(nonceRandomBytes), mark)
}

/**
 * The connections the protector handed on: each bound one with its Noise prologue, each
 * pnet one in a set. Noise runs on nothing else (fail closed: were libp2p ever to hand
 * the encrypter another object, no connection would form, rather than one without the
 * prologue).
 */
const prologues = new WeakMap<object, Uint8Array>()
const pnetConnections = new WeakSet<object>()

class PrivateNetwork implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'binge/pnet'
  private readonly keys: BoundKeys
  constructor(private readonly key: Uint8Array) {
    this.keys = boundKeys(key)
  }

  async protect(
    connection: MessageStream,
    options: AbortOptions = { signal: AbortSignal.timeout(exchangeTimeoutMs) },
  ): Promise<MessageStream> {
    const local = markedNonce(this.keys)
    const bytes = byteStream(connection)
    const [read] = await Promise.all([bytes.read({ bytes: nonceBytes, ...options }), bytes.write(local, options)])
    const remote = read.subarray()
    if (isMarked(remote, this.keys)) {
      const [theirs] = await Promise.all([
        bytes.read({ bytes: proofBytes, ...options }),
        bytes.write(hmac(this.keys.proof, local, remote).subarray(0, proofBytes), options),
      ])
      if (!timingSafeEqual(theirs.subarray(), hmac(this.keys.proof, remote, local).subarray(0, proofBytes))) {
        const err = new Error('the peer marked its nonce as a psk holder but sent no proof of the psk')
        connection.abort(err)
        throw err
      }
      const inner = bytes.unwrap()
      const [initiator, responder] = connection.direction === 'outbound' ? [local, remote] : [remote, local]
      prologues.set(inner, hmac(this.keys.prologue, initiator, responder))
      return inner
    }
    const inner = bytes.unwrap() as MultiaddrConnection
    const pnet = new PrivateConnection(
      inner,
      new XSalsa20(remote, this.key),
      new XSalsa20(local, this.key),
      connection.log.newScope('pnet'),
    )
    pnetConnections.add(pnet)
    return pnet
  }
}

/** What libp2p gives a connection encrypter: @libp2p/noise's components. */
type NoiseComponents = Parameters<ReturnType<typeof noise>>[0]

/**
 * Noise as @libp2p/noise runs it, but for a connection the private network bound: there
 * it runs with that connection's prologue, so it completes only with a psk holder that
 * saw the same nonces.
 */
class BoundNoise implements ConnectionEncrypter {
  readonly protocol = '/noise'
  readonly [Symbol.toStringTag] = 'binge/bound-noise'
  private readonly plain: ConnectionEncrypter

  constructor(
    private readonly components: NoiseComponents,
    private readonly init: NoiseInit,
  ) {
    this.plain = this.noise(init)
  }

  private noise(init: NoiseInit): ConnectionEncrypter {
    return noise(init)(this.components)
  }

  private forConnection(connection: object): ConnectionEncrypter {
    const prologue = prologues.get(connection)
    if (prologue !== undefined) return this.noise({ ...this.init, prologueBytes: prologue })
    if (pnetConnections.has(connection)) return this.plain
    throw new Error('Noise refuses a connection that did not pass the private network')
  }

  secureOutbound: ConnectionEncrypter['secureOutbound'] = (connection, options) =>
    this.forConnection(connection).secureOutbound(connection, options)

  secureInbound: ConnectionEncrypter['secureInbound'] = (connection, options) =>
    this.forConnection(connection).secureInbound(connection, options)
}

/**
 * What keeps a mesh with this psk private, for createLibp2p: its connection protector,
 * and Noise (`init`: @libp2p/noise's options) as the one connection encrypter.
 */
export function privateNetwork(
  psk: string,
  init: NoiseInit,
): {
  connectionProtector: () => ConnectionProtector
  connectionEncrypters: Array<(components: NoiseComponents) => ConnectionEncrypter<unknown>>
} {
  if (!simdAvailable()) return { connectionProtector: preSharedKey({ psk: swarmKey(psk) }), connectionEncrypters: [noise(init)] }
  const key = pskKey(psk)
  return { connectionProtector: () => new PrivateNetwork(key), connectionEncrypters: [(components) => new BoundNoise(components, init)] }
}
