// Any number of nodes on one IP (docs/design.md §5): gossipsub's IP-colocation score would graylist
// peers that share an address, so a 16-node mesh on loopback must form and hold for a
// minute; throwaway identities that connect from that IP and leave must not cost a node
// its real peers; and the address they announced stops being dialled once they are
// forgotten (learned peers leave the redial set when they stop announcing).
import fs from 'node:fs'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { dialAddressOf, startForgedPeer, stopForgedPeers } from '../support/forged-peer.js'
import { makeTempDir } from '../support/node-process.js'
import {
  bootstrapOf,
  meshStats,
  startMeshNode,
  startWebhook,
  waitConnected,
  waitFor,
  warnings,
  type MeshNode,
  type MeshStats,
} from '../support/mesh.js'

const servers: net.Server[] = []
cleanUpNodesAfterEach({
  before: stopForgedPeers,
  after: () => Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve)))),
})

const psk = 'one-ip-test-key'
const retry = { retry: { attempts: 10, backoff: '50ms', maxBackoff: '1s' } }
const pipelines = (url: string) => ({ p: { outputs: [{ http: { url, timeout: '5s' } }], onFail: retry } })

/** /stats with a deadline for a starved box (16 node processes on 2 shared cores). */
async function slowStats(n: MeshNode): Promise<MeshStats> {
  const res = await fetch(`${n.url}/stats`, { signal: AbortSignal.timeout(60_000) })
  expect(res.status).toBe(200)
  return (await res.json()) as MeshStats
}

/** Peers `s` lists as connected and heard from within `freshMs`. */
const live = (s: MeshStats, freshMs: number) => s.peers.filter((p) => p.connected && p.ageMs <= freshMs)

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 1024) : 0
}

describe('many nodes on one IP', () => {
  // 16 child processes on a shared 2-core box: generous deadlines for starting and
  // forming; once formed, every poll for a minute must see every node with 15 live peers.
  it('16 nodes on loopback with one psk form a full mesh and keep it for a minute', { timeout: 480_000 }, async () => {
    const dir = makeTempDir('binge-mesh-16-')
    const hook = await startWebhook()
    // A 2 s interval (fresh: heard within 8 s) keeps "fresh" meaningful on a box where
    // 16 nodes and other suites share 2 cores.
    const gossipInterval = 2_000
    const freshMs = gossipInterval * 3 + 2_000
    const options = (id: string, bootstrap: string[]) => ({
      id,
      dir,
      bootstrap,
      pipelines: pipelines(hook.url),
      workers: 1,
      mesh: { psk, gossipInterval: `${gossipInterval}ms` },
    })
    const first = await startMeshNode(options('n00', []))
    const started = Date.now()
    const rest = await Promise.all(
      Array.from({ length: 15 }, (_, i) => startMeshNode(options(`n${String(i + 1).padStart(2, '0')}`, [bootstrapOf(first)]))),
    )
    const nodes: MeshNode[] = [first, ...rest]
    const allReady = Math.max(...nodes.map((n) => n.readyAt))
    let lastSeen: Record<string, string> = {}
    await waitFor(
      async () => {
        const all = await Promise.all(nodes.map((n) => slowStats(n)))
        lastSeen = Object.fromEntries(
          all.map((s) => [s.node, `${live(s, freshMs).length} live, ${s.peers.filter((p) => p.connected).length} connected`]),
        )
        return all.every((s) => live(s, freshMs).length === 15)
      },
      { timeoutMs: 180_000, intervalMs: 250, what: 'every node to hear its 15 peers' },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; seen: ${JSON.stringify(lastSeen)}; warnings: ${JSON.stringify(nodes.map((n) => [n.id, warnings(n)]))}`,
      )
    })
    const formed = Date.now()

    // Hold: poll every node for a minute; each poll must show 15 live peers everywhere.
    const minSeen = new Map(nodes.map((n) => [n.id, 15]))
    let polls = 0
    while (Date.now() - formed < 60_000) {
      const all = await Promise.all(nodes.map((n) => slowStats(n)))
      polls++
      for (const [i, s] of all.entries()) {
        const seen = live(s, freshMs).length
        minSeen.set(nodes[i]!.id, Math.min(minSeen.get(nodes[i]!.id)!, seen))
        expect(
          seen,
          `${nodes[i]!.id} at ${Date.now() - formed} ms: ${JSON.stringify(s.peers.map((p) => [p.node, p.connected, p.ageMs]))}`,
        ).toBe(15)
      }
      await new Promise((r) => setTimeout(r, 1_000))
    }
    const rss = nodes.map((n) => rssMiB(n.proc.pid))
    console.log(
      '16 nodes on one IP:',
      JSON.stringify({
        startMs: allReady - started,
        formMsAfterAllReady: formed - allReady,
        polls,
        minPeersSeen: [...new Set(minSeen.values())],
        rssMiB: { min: Math.min(...rss), max: Math.max(...rss), total: rss.reduce((x, y) => x + y, 0) },
      }),
    )
  })

  it('16 throwaway identities from one IP that announce an address and leave: real peers still heard, the address stops being dialled', {
    timeout: 180_000,
  }, async () => {
    const dir = makeTempDir('binge-mesh-throwaway-')
    const hook = await startWebhook()
    const a = await startMeshNode({ id: 'a', dir, pipelines: pipelines(hook.url), mesh: { psk } })
    const b = await startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines: pipelines(hook.url), mesh: { psk } })
    await waitConnected(a, [b])
    await waitConnected(b, [a])
    const freshMs = 250 * 3 + 2_000

    // The address the throwaways announce: a listener that counts connections and drops them.
    const dialled: number[] = []
    const trap = net.createServer((socket) => {
      dialled.push(Date.now())
      socket.destroy()
    })
    servers.push(trap)
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve))
    const trapAddr = `/ip4/127.0.0.1/tcp/${(trap.address() as AddressInfo).port}`

    const dial = dialAddressOf(bootstrapOf(a), a.peerId)
    // One at a time: libp2p drops inbound connections past 10 pending handshakes.
    const throwaways = []
    for (let i = 0; i < 16; i++)
      throwaways.push(await startForgedPeer({ psk, node: `throwaway-${i}`, dial, announce: { addrs: [trapAddr], accepting: false } }))
    const ids = new Set(throwaways.map((t) => t.peerId))
    await waitFor(async () => (await meshStats(a)).peers.filter((p) => ids.has(p.peerId)).length === 16, {
      what: 'A to hear all 16 throwaways',
    })
    await waitFor(() => dialled.length > 0, { timeoutMs: 30_000, what: 'a node to dial the announced address' })
    await stopForgedPeers()
    const left = Date.now()

    // For 76 s after they left: A and B keep hearing each other (every poll), and the
    // announced address is dialled no more once the throwaways are forgotten (60 s).
    let worstAge = 0
    while (Date.now() - left < 76_000) {
      const [sa, sb] = await Promise.all([meshStats(a), meshStats(b)])
      const ab = live(sa, freshMs).find((p) => p.peerId === b.peerId)
      const ba = live(sb, freshMs).find((p) => p.peerId === a.peerId)
      expect(
        ab,
        `A stopped hearing B ${Date.now() - left} ms after the throwaways left: ${JSON.stringify(sa.peers.find((p) => p.peerId === b.peerId))}`,
      ).toBeDefined()
      expect(ba, `B stopped hearing A ${Date.now() - left} ms after the throwaways left`).toBeDefined()
      worstAge = Math.max(worstAge, ab!.ageMs, ba!.ageMs)
      await new Promise((r) => setTimeout(r, 500))
    }
    const before = dialled.filter((t) => t < left).length
    const during = dialled.filter((t) => t >= left && t < left + 60_000).length
    const quiet = dialled.filter((t) => t >= left + 64_000).length
    console.log(
      'throwaways on one IP:',
      JSON.stringify({
        dialsWhileAnnounced: before,
        dialsInFirst60sAfterLeaving: during,
        dialsFrom64to76s: quiet,
        worstPeerAgeMs: worstAge,
      }),
    )
    expect(quiet).toBe(0)
    const end = await meshStats(a)
    expect(end.peers.filter((p) => ids.has(p.peerId))).toEqual([])
  })
})
