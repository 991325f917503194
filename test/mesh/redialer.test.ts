// The redialer against a fake host with fake timers: it never gives up on a bootstrap
// address, it backs off on failures, and it backs off too on a peer that accepts the
// dial and closes the connection at once (a gater or allow-list on the other side),
// instead of redialling it every tick forever. A learned peer is kept only while it
// announces, and the set is bounded.
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { silentLogger } from '../../src/log.js'
import type { PeerHost } from '../../src/mesh/peer-host.js'
import { Redialer } from '../../src/mesh/redialer.js'

async function newPeerId(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** A host whose dials to `remote` do what `behaviour` says; counts them. */
function fakeHost(self: PeerId, remote: PeerId, behaviour: { fail: boolean; stays: boolean }) {
  let connected = false
  const host = {
    dials: 0,
    /** What each dial was for: a peer id (learned) or a multiaddr (bootstrap). */
    dialed: [] as string[],
    peerStore: { merge: async () => undefined },
    peerId: self,
    getConnections: (peer?: PeerId) => (connected && (!peer || peer.equals(remote)) ? [{ remotePeer: remote }] : []),
    dial: async (target: { toString(): string }) => {
      host.dials++
      host.dialed.push(target.toString())
      if (behaviour.fail) throw new Error('connection refused')
      connected = behaviour.stays
      return { remotePeer: remote }
    },
    drop: () => void (connected = false),
  }
  return host
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('Redialer', () => {
  it('keeps dialling an unreachable bootstrap address, with growing backoff, and never gives up', async () => {
    const remote = await newPeerId()
    const host = fakeHost(await newPeerId(), remote, { fail: true, stays: false })
    const r = new Redialer(host as unknown as PeerHost, silentLogger, { maxBackoffMs: 15_000 })
    r.addBootstrap(multiaddr('/ip4/127.0.0.1/tcp/1'))
    r.start()
    await vi.advanceTimersByTimeAsync(30_000)
    const early = host.dials
    expect(early).toBeGreaterThanOrEqual(4)
    expect(early).toBeLessThanOrEqual(8) // 1, 2, 4, 8, 15 s apart, not every 500 ms tick
    await vi.advanceTimersByTimeAsync(5 * 60_000)
    expect(host.dials - early).toBeGreaterThanOrEqual(15) // about every 15 s
    r.stop()
  })

  it('backs off on a peer that accepts the dial and drops the connection at once', async () => {
    const remote = await newPeerId()
    const host = fakeHost(await newPeerId(), remote, { fail: false, stays: false })
    const r = new Redialer(host as unknown as PeerHost, silentLogger, { maxBackoffMs: 15_000 })
    r.addBootstrap(multiaddr('/ip4/127.0.0.1/tcp/1'))
    r.start()
    await vi.advanceTimersByTimeAsync(30_000)
    expect(host.dials).toBeLessThanOrEqual(8) // was 60: one dial (and a handshake on both sides) every tick
    r.stop()
  })

  it('redials at once when a connection that proved stable drops', async () => {
    const remote = await newPeerId()
    const host = fakeHost(await newPeerId(), remote, { fail: false, stays: true })
    const r = new Redialer(host as unknown as PeerHost, silentLogger, { maxBackoffMs: 15_000 })
    r.learn(remote.toString(), ['/ip4/127.0.0.1/tcp/1'])
    r.start()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(host.dials).toBe(1)
    host.drop()
    await vi.advanceTimersByTimeAsync(600)
    expect(host.dials).toBe(2)
    r.stop()
  })

  it('forgets a learned peer that stops announcing: its dials stop; a bootstrap address is dialled for ever', async () => {
    const learned = await newPeerId()
    const host = fakeHost(await newPeerId(), learned, { fail: true, stays: false })
    const r = new Redialer(host as unknown as PeerHost, silentLogger, { maxBackoffMs: 15_000, forgetMs: 60_000 })
    r.addBootstrap(multiaddr('/ip4/127.0.0.1/tcp/2'))
    r.learn(learned.toString(), ['/ip4/127.0.0.1/tcp/1'])
    r.start()
    const dialsOf = (what: string) => host.dialed.filter((d) => d === what).length
    // Announcing (relayed gossip) keeps it in the set while it is unreachable.
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(10_000)
      r.learn(learned.toString(), ['/ip4/127.0.0.1/tcp/1'])
    }
    expect(r.has(learned.toString())).toBe(true)
    // Then it goes quiet: gone from the set a minute later, and never dialled again.
    await vi.advanceTimersByTimeAsync(61_000)
    expect(r.has(learned.toString())).toBe(false)
    const learnedDials = dialsOf(learned.toString())
    const bootstrapDials = dialsOf('/ip4/127.0.0.1/tcp/2')
    await vi.advanceTimersByTimeAsync(5 * 60_000)
    expect(dialsOf(learned.toString())).toBe(learnedDials)
    expect(dialsOf('/ip4/127.0.0.1/tcp/2') - bootstrapDials).toBeGreaterThanOrEqual(15)
    expect(r.size()).toBe(1)
    r.stop()
  })

  it('keeps at most maxTargets: a new peer pushes out the learned peer unheard for longest, never a bootstrap', async () => {
    const host = fakeHost(await newPeerId(), await newPeerId(), { fail: true, stays: false })
    const r = new Redialer(host as unknown as PeerHost, silentLogger, { maxTargets: 4 })
    r.addBootstrap(multiaddr('/ip4/127.0.0.1/tcp/2'))
    const ids = await Promise.all(Array.from({ length: 6 }, () => newPeerId()))
    for (const id of ids) {
      r.learn(id.toString(), ['/ip4/127.0.0.1/tcp/1'])
      await vi.advanceTimersByTimeAsync(100)
    }
    expect(r.size()).toBe(4)
    expect(ids.map((id) => r.has(id.toString()))).toEqual([false, false, false, true, true, true])
    r.stop()
  })
})
