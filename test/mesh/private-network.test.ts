// The mesh's private network and Noise cipher (private-network.ts, noise-crypto.ts) are
// libp2p's on the wire: a node talks with a host built on @libp2p/pnet and @libp2p/noise's
// own cipher (an older binge, say) when they share the psk, both ways and in frames of
// megabytes, and cannot connect to one with another key.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { noise } from '@libp2p/noise'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { createHash, randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { FrameBudget } from '../../src/mesh/frame-budget.js'
import { request, serve } from '../../src/mesh/frames.js'
import { createPeerHost, type PeerHost } from '../../src/mesh/peer-host.js'
import { swarmKey } from '../../src/mesh/private-network.js'

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

/** A host of libp2p's own parts: @libp2p/pnet, and Noise with its default cipher. */
async function libp2pHost(key: string): Promise<PeerHost> {
  const host: Libp2p = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: swarmKey(key) }),
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

describe('the private network on the wire', () => {
  it('a binge host and a @libp2p/pnet host with the same psk carry megabyte frames both ways', { timeout: 60_000 }, async () => {
    const [ours, theirs] = [await bingeHost(psk), await libp2pHost(psk)]
    await serveDigests(ours, theirs)
    await ours.dial(theirs.getMultiaddrs()[0]!)
    for (const [from, to] of [
      [ours, theirs],
      [theirs, ours],
    ] as const) {
      // Odd sizes, so the cipher's key stream runs on across updates that end inside a block.
      for (const size of [3 * 1024 * 1024 + 7, 1, 100_001]) {
        const text = randomBytes(size).toString('base64').slice(0, size)
        await expect(request(from, to.peerId, protocol, text, 20_000)).resolves.toEqual({ chars: size, digest: digest(text) })
      }
    }
  })

  it('a binge host cannot connect to a @libp2p/pnet host with another psk, either way', { timeout: 60_000 }, async () => {
    const [ours, theirs] = [await bingeHost(psk), await libp2pHost('another-key')]
    await expect(ours.dial(theirs.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
    await expect(theirs.dial(ours.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
  })
})
