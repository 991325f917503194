// The mesh's private network (mesh.psk): libp2p's pnet, byte for byte as @libp2p/pnet
// speaks it. Each side sends a random 24-byte nonce in the clear, then everything it
// sends is XORed with the XSalsa20 stream of the psk and its own nonce. So a node of
// this version and one that runs @libp2p/pnet (an older binge) still talk, as
// test/mesh/private-network.test.ts checks both ways. What differs is the cipher:
// xsalsa20.ts, four blocks at a time, where @libp2p/pnet's took a tenth of each side's
// CPU in a handoff. A runtime without WebAssembly SIMD gets @libp2p/pnet itself.
import type { AbortOptions, ConnectionProtector, Logger, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import { AbstractMultiaddrConnection, byteStream, type SendResult } from '@libp2p/utils'
import { createHash, randomBytes } from 'node:crypto'
import { XSalsa20, simdAvailable } from './xsalsa20.js'

const nonceBytes = 24
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

class PrivateNetwork implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'binge/pnet'
  constructor(private readonly key: Uint8Array) {}

  async protect(
    connection: MessageStream,
    options: AbortOptions = { signal: AbortSignal.timeout(exchangeTimeoutMs) },
  ): Promise<MessageStream> {
    const local = randomBytes(nonceBytes)
    const bytes = byteStream(connection)
    const [remote] = await Promise.all([bytes.read({ bytes: nonceBytes, ...options }), bytes.write(local, options)])
    const inner = bytes.unwrap() as MultiaddrConnection
    return new PrivateConnection(
      inner,
      new XSalsa20(remote.subarray(), this.key),
      new XSalsa20(local, this.key),
      connection.log.newScope('pnet'),
    )
  }
}

/** The connection protector of a mesh with this psk, for createLibp2p's `connectionProtector`. */
export function privateNetwork(psk: string): () => ConnectionProtector {
  if (!simdAvailable()) return preSharedKey({ psk: swarmKey(psk) })
  const key = pskKey(psk)
  return () => new PrivateNetwork(key)
}
