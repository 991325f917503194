// Mesh security (docs/design.md §5): with `psk` set, only peers that share the key connect;
// gossip is signed and validated, so a peer that publishes garbage, or an announcement
// that claims to come from another peer, is neither believed nor listed.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { loadTopic, type Announcement } from '../../src/mesh/announcement.js'
import { createPeerHost, type PeerHost } from '../../src/mesh/peer-host.js'
import { makeTempDir } from '../support/node-process.js'
import {
  bootstrapOf,
  connectedPeers,
  logsOf,
  meshStats,
  startMeshNode,
  startWebhook,
  waitConnected,
  waitFor,
  type MeshNode,
} from '../support/mesh.js'

const hosts: PeerHost[] = []

cleanUpNodesAfterEach({
  before: () =>
    Promise.all(
      hosts
        .splice(0)
        .map(async (h) => h.stop())
        .map((p) => p.catch(() => undefined)),
    ),
})

const psk = 'correct-horse-battery-staple'
const retry = { retry: { attempts: 10, backoff: '50ms', maxBackoff: '1s' } }
const pipelinesFor = (url: string) => ({ p: { outputs: [{ http: { url, timeout: '5s' } }], onFail: retry } })

/** For `windowMs`, check that `node` never lists any of `peerIds` (polling, not sleeping through it). */
async function neverLists(node: MeshNode, peerIds: string[], windowMs: number): Promise<void> {
  const until = Date.now() + windowMs
  while (Date.now() < until) {
    const s = await meshStats(node)
    const listed = s.peers.filter((p) => peerIds.includes(p.peerId))
    expect(listed, `${node.id} lists ${JSON.stringify(listed)}`).toEqual([])
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('mesh security', () => {
  it('with a psk, a peer without it (or with another key) cannot connect; one with it can', async () => {
    const dir = makeTempDir('binge-mesh-psk-')
    const hook = await startWebhook()
    const pipelines = pipelinesFor(hook.url)
    const a = await startMeshNode({ id: 'a', dir, pipelines, mesh: { psk } })
    const [b, c, d] = await Promise.all([
      startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines, mesh: { psk } }),
      startMeshNode({ id: 'c', dir, bootstrap: [bootstrapOf(a)], pipelines, mesh: { psk: 'another-key' } }),
      startMeshNode({ id: 'd', dir, bootstrap: [bootstrapOf(a)], pipelines }),
    ])
    await waitConnected(a, [b])
    await waitConnected(b, [a])
    // C and D have been dialling A; wait until each has seen a dial fail, then watch
    // for a few gossip intervals (and a redial) that neither ever shows up.
    for (const n of [c, d])
      await n.proc.waitForLog((l) => l.msg === 'A mesh peer could not be reached; dialling again with backoff.', 15_000)
    await Promise.all([
      neverLists(a, [c.peerId, d.peerId], 2_500),
      neverLists(b, [c.peerId, d.peerId], 2_500),
      neverLists(c, [a.peerId, b.peerId, d.peerId], 2_500),
      neverLists(d, [a.peerId, b.peerId, c.peerId], 2_500),
    ])
    expect((await meshStats(c)).peers).toEqual([])
    expect((await meshStats(d)).peers).toEqual([])
    const sa = await meshStats(a)
    expect(sa.peers.map((p) => p.node)).toEqual(['b'])
    expect(sa.peers[0]!.connected).toBe(true)
  })

  it('with allowPeers, a node talks only to the listed peer ids, in both directions', async () => {
    const dir = makeTempDir('binge-mesh-allow-')
    const hook = await startWebhook()
    const pipelines = pipelinesFor(hook.url)
    const b = await startMeshNode({ id: 'b', dir, pipelines })
    // A allows only B. C, not on A's list, learns of A from B's gossip and dials it.
    const [a, c] = await Promise.all([
      startMeshNode({ id: 'a', dir, bootstrap: [bootstrapOf(b)], pipelines, mesh: { allowPeers: [b.peerId] } }),
      startMeshNode({ id: 'c', dir, bootstrap: [bootstrapOf(b)], pipelines: { ...pipelines, 'only-c': pipelines.p } }),
    ])
    await waitConnected(a, [b])
    await waitConnected(c, [b])
    // A's gater closes C's connection as soon as it is made: C backs off (and says why).
    await c.proc.waitForLog(
      (l) => String(l.msg).startsWith('A mesh peer closed the connection soon after it was made') && l.peer === a.peerId,
      15_000,
    )
    // C's gossip reaches A through B, but A does not believe a peer it may not talk to.
    await neverLists(a, [c.peerId], 2_500)
    expect((await connectedPeers(c)).has(a.peerId)).toBe(false)
    expect((await connectedPeers(a)).has(c.peerId)).toBe(false)
    expect((await meshStats(b)).peers.map((p) => p.node).sort()).toEqual(['a', 'c'])
    // C's pipeline is not routable through A: A does not believe C's gossip relayed by B.
    const routed = await fetch(`${a.url}/events/only-c`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    })
    expect(routed.status).toBe(404)
  })

  it('ignores invalid gossip: not JSON, off the schema, or claiming another peer id; the node keeps working', async () => {
    const dir = makeTempDir('binge-mesh-gossip-')
    const hook = await startWebhook()
    const pipelines = pipelinesFor(hook.url)
    const a = await startMeshNode({ id: 'a', dir, pipelines, mesh: { psk } })
    const b = await startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines, mesh: { psk } })
    await waitConnected(a, [b])

    // A peer in this process, with the psk (so it gets in), that speaks gossip badly.
    const privateKey = await generateKeyPair('Ed25519')
    const evil = await createPeerHost({ privateKey, listen: '/ip4/127.0.0.1/tcp/0', psk, allowPeers: [] })
    hosts.push(evil)
    await evil.start()
    const evilId = evil.peerId.toString()
    await evil.dial(multiaddr(`/ip4/127.0.0.1/tcp/${bootstrapOf(a).split(':')[1]}/p2p/${a.peerId}`))
    const pubsub = evil.services.pubsub
    pubsub.subscribe(loadTopic)
    await waitFor(() => pubsub.getSubscribers(loadTopic).some((p) => p.toString() === a.peerId), {
      what: 'the evil peer to see A subscribed to the load topic',
    })

    const someoneElse = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const valid = (peerId: string, node: string): Announcement => ({
      v: 1,
      node,
      peerId,
      http: '127.0.0.1:1',
      addrs: [],
      depth: 0,
      inflight: 0,
      highWaterMark: 1_000_000,
      lowWaterMark: 0,
      maxEvents: 1_000_000,
      accepting: true,
      drainRate: 0,
      pipelines: ['p', 'evil-only'],
      sentAt: Date.now(),
    })
    const encode = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))
    const bad = [
      encode('this is not JSON {'),
      encode({ v: 1, node: 'evil-schema', peerId: evilId }),
      encode({ ...valid(evilId, 'evil-extra'), extra: 'field' }),
      encode({ ...valid(evilId, 'evil-negative'), depth: -5 }),
      encode(valid(someoneElse, 'evil-claims-other')),
      encode(valid(b.peerId, 'evil-claims-b')),
      new Uint8Array(20_000).fill(0x20), // over the size limit (16 KiB)
    ]
    const before = logsOf(a, 'An invalid gossip message was rejected.').length
    for (const data of bad) await pubsub.publish(loadTopic, data)
    await waitFor(() => logsOf(a, 'An invalid gossip message was rejected.').length - before >= bad.length, {
      timeoutMs: 15_000,
      what: `A to reject all ${bad.length} invalid messages`,
    })
    const reasons = logsOf(a, 'An invalid gossip message was rejected.')
      .slice(before)
      .map((l) => String(l.reason))
    expect(reasons.some((r) => r.includes('not JSON'))).toBe(true)
    expect(reasons.some((r) => r.includes('schema'))).toBe(true)
    expect(reasons.some((r) => r.includes(`claims peer ${b.peerId}`))).toBe(true)

    // Rejected, not forwarded: B never hears of them either. Watch a few gossip intervals.
    const ids = [evilId, someoneElse]
    await Promise.all([neverLists(a, ids, 1_500), neverLists(b, ids, 1_500)])
    for (const n of [a, b]) {
      const s = await meshStats(n)
      expect(
        s.peers.filter((p) => p.node.startsWith('evil')),
        `${n.id} believed a forged announcement`,
      ).toEqual([])
      expect(s.peers.some((p) => p.pipelines.includes('evil-only'))).toBe(false)
    }
    // B's entry at A is still B's own.
    const bAtA = (await meshStats(a)).peers.find((p) => p.peerId === b.peerId)
    expect(bAtA?.node).toBe('b')
    expect(bAtA?.http).not.toBe('http://127.0.0.1:1')
    // A pipeline only the forged announcement claimed is not routable.
    const routed = await fetch(`${a.url}/events/evil-only`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    })
    expect(routed.status).toBe(404)

    // A keeps working: it takes an event, processes it, and still sees B.
    expect(a.proc.alive).toBe(true)
    const res = await fetch(`${a.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid: 'still-working' }),
    })
    expect(res.status).toBe(202)
    await waitFor(() => hook.counts.get('still-working') === 1, {
      timeoutMs: 15_000,
      what: 'A to process an event after the invalid gossip',
    })
    await waitConnected(a, [b])
  })
})
