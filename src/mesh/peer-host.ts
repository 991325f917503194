// Builds the libp2p host of a node: TCP, Noise, Yamux, identify, ping and gossipsub
// (the libp2p 3 line; `@libp2p/gossipsub` because `@chainsafe/libp2p-gossipsub` 14 is
// built for libp2p 2 and on libp2p 3 silently forms no mesh). With a psk the host
// speaks only to peers that share it (private network: private-network.ts; Noise's
// cipher: noise-crypto.ts); with allowPeers the gater
// refuses every other peer id in both directions. No limit or score depends on the
// peer's IP address: any number of nodes may share one.
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { ConnectionGater, PeerId, PrivateKey } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { meshNoiseCrypto } from './noise-crypto.js'
import { privateNetwork } from './private-network.js'

export interface PeerHostOptions {
  privateKey: PrivateKey
  listen: string
  psk: string
  allowPeers: string[]
}

/** The longest a connection may take to set up, either way (the redialer's deadline too). */
export const dialTimeoutMs = 10_000

export type PeerHost = Libp2p<{ pubsub: GossipSub; identify: unknown; ping: unknown }>

/** Each host's allow-list (absent: every peer is allowed), for the checks outside the gater. */
const allowLists = new WeakMap<object, Set<string>>()

/**
 * May `host` talk to `peerId`? Gossip asks, so that a peer the gater refuses is not
 * believed (and not handed events) just because an allowed peer relayed its announcement.
 */
export function isPeerAllowed(host: PeerHost, peerId: string): boolean {
  return allowLists.get(host)?.has(peerId) ?? true
}

function allowListGater(allowPeers: string[]): ConnectionGater | undefined {
  if (allowPeers.length === 0) return undefined
  const allowed = new Set(allowPeers)
  const denied = (peer: PeerId) => !allowed.has(peer.toString())
  return {
    denyDialPeer: denied,
    denyInboundEncryptedConnection: denied,
    denyOutboundEncryptedConnection: denied,
  }
}

const noiseInit = { crypto: meshNoiseCrypto }

export async function createPeerHost(options: PeerHostOptions): Promise<PeerHost> {
  const host = (await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: [options.listen] },
    transports: [tcp()],
    streamMuxers: [yamux()],
    ...(options.psk !== '' ? privateNetwork(options.psk, noiseInit) : { connectionEncrypters: [noise(noiseInit)] }),
    ...(allowListGater(options.allowPeers) ? { connectionGater: allowListGater(options.allowPeers) } : {}),
    // libp2p refuses more than 5 inbound connections a second from one IP, and more than
    // 10 handshakes at once: a mesh on one host or behind one NAT that (re)forms would
    // have most of its dials refused and backed off. The key, not the address, keeps
    // strangers out; handshakes stay bounded by the pending limit. A handshake costs
    // tens of ms of CPU a side: on a busy host one abandoned after libp2p's 6 s is work
    // redone at the retry, so outbound dials get the same 10 s as inbound upgrades.
    // libp2p pings every connection each 10 s and drops it when a ping takes over 5 s: on
    // a busy host (many nodes on one box) that churns healthy connections all the time.
    // A frozen peer is still dropped, 15 s later; handoffs have their own deadline.
    connectionMonitor: { pingTimeout: { minTimeout: 15_000 } },
    connectionManager: {
      inboundConnectionThreshold: 1_000,
      maxIncomingPendingConnections: 64,
      addressDialTimeout: dialTimeoutMs,
      inboundUpgradeTimeout: dialTimeoutMs,
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        emitSelf: false,
        allowPublishToZeroTopicPeers: true,
        // Small meshes: send our own announcements to every subscribed peer, not just
        // the gossip mesh, so a new node learns everyone's load within one interval.
        floodPublish: true,
        // Any number of nodes may share one IP (`binge mesh up`, host networking, one
        // NAT): gossipsub's IP-colocation penalty would graylist all but 10 of them, and
        // it counts identities that already left for an hour. The psk or allowPeers, not
        // the address, is what keeps strangers out.
        scoreParams: { IPColocationFactorWeight: 0 },
      }),
    },
  })) as PeerHost
  if (options.allowPeers.length > 0) allowLists.set(host, new Set(options.allowPeers))
  return host
}
