// A hostile mesh peer in the test process: a real libp2p host (with the mesh key, so it
// gets in) that signs load announcements saying whatever the test wants, and acks every
// handoff while keeping nothing. Counts what it was handed, by payload id (`data.cid`).
// Invariants: `stop` clears its publish timer and stops the host; a test stops every
// forged peer it starts (stopForgedPeers in an afterEach hook).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { loadTopic, type Announcement } from '../../src/mesh/announcement.js'
import { pino } from 'pino'
import { FrameBudget } from '../../src/mesh/frame-budget.js'
import { serve } from '../../src/mesh/frames.js'
import { decodeHandoffFrame } from '../../src/mesh/handoff-frame.js'
import { handoffProtocol } from '../../src/mesh/handoff-protocol.js'
import { createPeerHost, type PeerHost } from '../../src/mesh/peer-host.js'

export interface ForgedPeer {
  host: PeerHost
  peerId: string
  /** Handed-in events by payload id: what it acked and threw away. */
  taken: Map<string, number>
  stop(): Promise<void>
}

export interface ForgedPeerOptions {
  psk: string
  /** The node name it claims. */
  node: string
  /** A node to connect to: its multiaddr with /p2p/ID. */
  dial: string
  /** Overrides of the announcement (the default: unlimited room, never any backlog or drain). */
  announce?: Partial<Announcement>
  intervalMs?: number
}

const forged = new Set<ForgedPeer>()

export async function startForgedPeer(o: ForgedPeerOptions): Promise<ForgedPeer> {
  const host = await createPeerHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: '/ip4/127.0.0.1/tcp/0',
    psk: o.psk,
    allowPeers: [],
  })
  await host.start()
  const peerId = host.peerId.toString()
  const taken = new Map<string, number>()
  await serve(
    host,
    handoffProtocol,
    10_000,
    async (body) => {
      const events = (body as { events?: { data?: { cid?: unknown } }[] }).events ?? []
      for (const e of events) {
        const key = String(e.data?.cid)
        taken.set(key, (taken.get(key) ?? 0) + 1)
      }
      return { status: 'accepted', accepted: events.length, duplicates: 0 }
    },
    // The events as a node's frame carries them, their data parsed (handoff-frame.ts).
    { budget: new FrameBudget(), log: pino({ level: 'silent' }), decode: (frame) => decodeHandoffFrame(frame).body },
  )
  const pubsub = host.services.pubsub
  pubsub.subscribe(loadTopic)
  // A node may refuse a burst of connections (libp2p's per-IP rate limit): try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await host.dial(multiaddr(o.dial), { signal: AbortSignal.timeout(20_000) })
      break
    } catch (err) {
      if (attempt >= 20) {
        await host.stop()
        throw err
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
  const announcement = (): Announcement => ({
    v: 1,
    node: o.node,
    peerId,
    http: '127.0.0.1:1',
    addrs: host.getMultiaddrs().map(String),
    depth: 0,
    inflight: 0,
    highWaterMark: 1e12,
    lowWaterMark: 0,
    maxEvents: 1e12,
    accepting: true,
    drainRate: 0,
    pipelines: ['p'],
    sentAt: Date.now(),
    ...o.announce,
  })
  const publish = () => void pubsub.publish(loadTopic, new TextEncoder().encode(JSON.stringify(announcement()))).catch(() => undefined)
  const timer = setInterval(publish, o.intervalMs ?? 250)
  publish()
  const peer: ForgedPeer = {
    host,
    peerId,
    taken,
    stop: async () => {
      clearInterval(timer)
      forged.delete(peer)
      await Promise.resolve(host.stop()).catch(() => undefined)
    },
  }
  forged.add(peer)
  return peer
}

export async function stopForgedPeers(): Promise<void> {
  await Promise.all([...forged].map((p) => p.stop()))
}

/** The multiaddr to dial a child node at: `host:port` (bootstrapOf) with its peer id. */
export function dialAddressOf(hostPort: string, peerId: string): string {
  const [host, port] = hostPort.split(':')
  return `/ip4/${host}/tcp/${port}/p2p/${peerId}`
}
