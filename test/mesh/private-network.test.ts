// The mesh's private network and Noise cipher (private-network.ts, noise-crypto.ts) are
// libp2p's on the wire: a node talks with a host built on @libp2p/pnet and @libp2p/noise's
// own cipher (an older binge, say) when they share the psk, both ways and in frames of
// megabytes, and cannot connect to one with another key. Two nodes of this version bind
// the psk into Noise instead (bound mode): checked here on raw sockets against the
// derivation design.md gives, and against a stranger who replays a mark or relays a
// member's proofs.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { noise } from '@libp2p/noise'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { ConnectionProtector, MessageStream } from '@libp2p/interface'
import { byteStream } from '@libp2p/utils'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { FrameBudget } from '../../src/mesh/frame-budget.js'
import { request, serve } from '../../src/mesh/frames.js'
import { createPeerHost, type PeerHost } from '../../src/mesh/peer-host.js'
import { privateNetwork, pskKey, swarmKey } from '../../src/mesh/private-network.js'

const hosts: Array<{ stop(): void | Promise<void> }> = []
afterEach(async () => {
  await Promise.all(hosts.splice(0).map(async (h) => h.stop()))
})

const psk = 'private-network-test'
const protocol = '/binge-test/digest/1.0.0'
const listen = '/ip4/127.0.0.1/tcp/0'

async function bingeHost(key: string): Promise<PeerHost> {
  const host = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), listen, psk: key, allowPeers: [] })
  hosts.push(host)
  await host.start()
  return host
}

/** A host of libp2p's own parts: @libp2p/pnet with this key (or another protector), and Noise with its default cipher. */
async function libp2pHost(key: string | (() => ConnectionProtector)): Promise<PeerHost> {
  const host: Libp2p = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: typeof key === 'string' ? preSharedKey({ psk: swarmKey(key) }) : key,
  })
  hosts.push(host)
  await host.start()
  return host as unknown as PeerHost
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex')

/** Each host answers a text with its length and digest. */
async function serveDigests(...servers: PeerHost[]): Promise<void> {
  const log = pino({ level: 'silent' })
  for (const server of servers)
    await serve(server, protocol, 20_000, async (body) => ({ chars: String(body).length, digest: digest(String(body)) }), {
      budget: new FrameBudget(),
      log,
    })
}

/** `x` dials `y`; then texts of these sizes go each way as requests, answered by their digests. */
async function carriesBothWays(x: PeerHost, y: PeerHost, sizes: number[]): Promise<void> {
  await serveDigests(x, y)
  await x.dial(y.getMultiaddrs()[0]!)
  for (const [from, to] of [
    [x, y],
    [y, x],
  ] as const) {
    for (const size of sizes) {
      const text = randomBytes(size).toString('base64').slice(0, size)
      await expect(request(from, to.peerId, protocol, text, 20_000)).resolves.toEqual({ chars: size, digest: digest(text) })
    }
  }
}

async function cannotConnect(x: PeerHost, y: PeerHost): Promise<void> {
  await expect(x.dial(y.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
  await expect(y.dial(x.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
}

// Odd sizes, so a cipher's key stream runs on across updates that end inside a block.
const sizes = [3 * 1024 * 1024 + 7, 1, 100_001]

describe('the private network on the wire', () => {
  it('a binge host and a @libp2p/pnet host with the same psk carry megabyte frames both ways, whichever dials', {
    timeout: 60_000,
  }, async () => {
    await carriesBothWays(await bingeHost(psk), await libp2pHost(psk), sizes)
    await carriesBothWays(await libp2pHost(psk), await bingeHost(psk), sizes)
  })

  it('a binge host cannot connect to a @libp2p/pnet host with another psk, either way', { timeout: 60_000 }, async () => {
    await cannotConnect(await bingeHost(psk), await libp2pHost('another-key'))
  })

  it('two binge hosts with the same psk carry megabyte frames both ways; with another psk they cannot connect', {
    timeout: 60_000,
  }, async () => {
    const [a, b] = [await bingeHost(psk), await bingeHost(psk)]
    await carriesBothWays(a, b, sizes)
    await cannotConnect(a, await bingeHost('another-key'))
  })
})

// Bound mode on the wire, spelled out independently of private-network.ts (design.md,
// "The mesh's key"): keys are HMAC-SHA256(psk, label); a nonce is 16 random bytes and
// the first 8 of HMAC(mark key, them); a proof is the first 16 of HMAC(proof key, the
// sender's nonce, then the other's).
const hmac = (key: Uint8Array, ...parts: Uint8Array[]) => {
  const h = createHmac('sha256', key)
  for (const part of parts) h.update(part)
  return h.digest()
}
const label = (name: string) => hmac(pskKey(psk), Buffer.from(`binge/psk-bound/${name}`))
const markedNonce = () => {
  const random = randomBytes(16)
  return Buffer.concat([random, hmac(label('mark'), random).subarray(0, 8)])
}
const isMarked = (nonce: Buffer) => hmac(label('mark'), nonce.subarray(0, 16)).subarray(0, 8).equals(nonce.subarray(16))
const proof = (sender: Buffer, other: Buffer) => hmac(label('proof'), sender, other).subarray(0, 16)

/** A raw TCP connection to `host`, read `bytes` at a time (null: closed first). */
async function rawConnection(host: PeerHost): Promise<{ socket: Socket; read(bytes: number, timeoutMs?: number): Promise<Buffer | null> }> {
  const port = Number(host.getMultiaddrs()[0]!.toString().split('/')[4])
  const socket = connect(port, '127.0.0.1')
  hosts.push({ stop: () => void socket.destroy() })
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  let buffered = Buffer.alloc(0)
  let closed = false
  let wake = () => {}
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    wake()
  })
  socket.on('close', () => {
    closed = true
    wake()
  })
  socket.on('error', () => {})
  return {
    socket,
    async read(bytes, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs
      while (buffered.length < bytes && !closed) {
        if (Date.now() > deadline) throw new Error(`no ${bytes} bytes within ${timeoutMs} ms`)
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, 100)
        })
      }
      if (buffered.length < bytes) return null
      const out = buffered.subarray(0, bytes)
      buffered = buffered.subarray(bytes)
      return out
    },
  }
}

/** multistream-select's first message, as a dialer sends it: varint length, then the text. */
const mssHeader = Buffer.concat([Buffer.from([19]), Buffer.from('/multistream/1.0.0\n')])

describe('bound mode', () => {
  it('a binge host marks its nonce, proves the psk, and then passes bytes as they are', { timeout: 30_000 }, async () => {
    const host = await bingeHost(psk)
    const { socket, read } = await rawConnection(host)
    const ours = markedNonce()
    socket.write(ours)
    const theirs = (await read(24))!
    expect(isMarked(theirs)).toBe(true)
    socket.write(proof(ours, theirs))
    expect(await read(16)).toEqual(proof(theirs, ours))
    // No cipher under Noise now: multistream-select's header comes back as it is.
    socket.write(mssHeader)
    expect(await read(mssHeader.length)).toEqual(mssHeader)
  })

  it('Noise runs on no connection the private network did not hand on (fail closed)', async () => {
    const silent = Object.assign(() => {}, { enabled: false, error: () => {}, trace: () => {}, newScope: () => silent })
    const components = {
      privateKey: await generateKeyPair('Ed25519'),
      logger: { forComponent: () => silent },
      upgrader: { getStreamMuxers: () => new Map() },
    } as unknown as Parameters<ReturnType<typeof privateNetwork>['connectionEncrypters'][0]>[0]
    const [encrypter] = privateNetwork(psk, {}).connectionEncrypters.map((make) => make(components))
    const stranger = {} as unknown as MessageStream
    await expect(async () => encrypter!.secureInbound(stranger)).rejects.toThrow(/did not pass the private network/)
    await expect(async () => encrypter!.secureOutbound(stranger)).rejects.toThrow(/did not pass the private network/)
  })

  it('a stranger replaying a mark it saw is refused at the proof, before any handshake', { timeout: 30_000 }, async () => {
    const host = await bingeHost(psk)
    const first = await rawConnection(host)
    first.socket.write(randomBytes(24))
    const seen = (await first.read(24))!
    expect(isMarked(seen)).toBe(true)

    const replay = await rawConnection(host)
    replay.socket.write(seen)
    expect(isMarked((await replay.read(24))!)).toBe(true)
    await replay.read(16) // its proof, which the stranger cannot check
    replay.socket.write(randomBytes(16))
    replay.socket.write(mssHeader)
    // The host closes the connection; nothing of multistream-select comes back.
    expect(await replay.read(1, 10_000)).toBeNull()
  })

  it("a stranger relaying a member's nonce and proofs cannot finish the handshake", { timeout: 60_000 }, async () => {
    // The stranger dials B, and opens a side connection to A, a member, to answer B with
    // A's nonce and proof (A proves the psk for the pair of nonces the stranger relays).
    // Then it speaks Noise to B as itself: without the psk it lacks the prologue.
    const [a, b] = [await bingeHost(psk), await bingeHost(psk)]
    const relayer: ConnectionProtector = {
      async protect(connection: MessageStream): Promise<MessageStream> {
        const toB = byteStream(connection)
        const side = await rawConnection(a)
        const nonceB = (await toB.read({ bytes: 24 })).subarray()
        const nonceA = (await side.read(24))!
        side.socket.write(nonceB)
        await toB.write(nonceA)
        const [proofA, proofB] = await Promise.all([side.read(16), toB.read({ bytes: 16 })])
        side.socket.write(proofB.subarray())
        await toB.write(proofA!)
        return toB.unwrap()
      },
    }
    const stranger = await libp2pHost(() => relayer)
    await expect(stranger.dial(b.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow()
    expect(b.getConnections(stranger.peerId)).toEqual([])
  })
})
