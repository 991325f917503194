// Claims are checked against deeds (docs/design.md §5): a peer that announces unlimited room and
// acks every handoff while keeping nothing gets at most its first credit (one handoff
// batch) from a loaded node; a peer that claims a real node's name is flagged in
// /stats and the log and gets nothing; the rest of the overflow goes to the honest peer.
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { dialAddressOf, startForgedPeer, stopForgedPeers } from '../support/forged-peer.js'
import { makeTempDir, postEvents } from '../support/node-process.js'
import {
  bootstrapOf,
  logsOf,
  meshStats,
  mergeCounts,
  startMeshNode,
  startWebhook,
  waitConnected,
  waitFor,
  warnings,
} from '../support/mesh.js'

cleanUpNodesAfterEach({ before: stopForgedPeers })

const psk = 'claims-test-key'
const batch = 100
const retry = { retry: { attempts: 10, backoff: '50ms', maxBackoff: '1s' } }
const pipelines = (url: string) => ({ p: { outputs: [{ http: { url, timeout: '5s' } }], onFail: retry } })
const total = 3_000

describe('claims checked against deeds', () => {
  it('a forged announcer with unlimited room gets at most one batch; a stolen name is flagged and gets nothing; the honest peer gets the rest', {
    timeout: 180_000,
  }, async () => {
    const dir = makeTempDir('binge-mesh-claims-')
    const [slowHook, hookB] = await Promise.all([startWebhook({ delayMs: 40, perEventMs: 20 }), startWebhook()])
    const mesh = { psk, handoffBatch: batch }
    const a = await startMeshNode({
      id: 'a',
      dir,
      pipelines: pipelines(slowHook.url),
      queue: { highWaterMark: 200, lowWaterMark: 100, maxEvents: 100_000 },
      mesh,
    })
    const b = await startMeshNode({
      id: 'b',
      dir,
      bootstrap: [bootstrapOf(a)],
      pipelines: pipelines(hookB.url),
      queue: { highWaterMark: 5_000, lowWaterMark: 2_000 },
      mesh,
    })
    await waitConnected(a, [b])
    await waitFor(async () => (await meshStats(a)).peers.some((p) => p.node === 'b' && p.ageMs < 1_000), { what: 'A to hear B' })

    // Two liars, both announcing unlimited room, no backlog and no drain: one under its
    // own name, one under B's.
    const dial = dialAddressOf(bootstrapOf(a), a.peerId)
    const liar = await startForgedPeer({ psk, node: 'liar', dial })
    const thief = await startForgedPeer({ psk, node: 'b', dial })
    const stats = await waitFor(
      async () => {
        const s = await meshStats(a)
        const listed = (id: string) => s.peers.some((p) => p.peerId === id && p.connected && p.ageMs < 1_000)
        return listed(liar.peerId) && listed(thief.peerId) ? s : undefined
      },
      { what: 'A to hear both forged peers' },
    )
    const named = (node: string) => stats.peers.filter((p) => p.node === node)
    expect(
      named('b')
        .map((p) => ({ peerId: p.peerId, conflict: p.conflict }))
        .sort((x, y) => Number(x.conflict) - Number(y.conflict)),
    ).toEqual([
      { peerId: b.peerId, conflict: false },
      { peerId: thief.peerId, conflict: true },
    ])
    const conflictLogs = logsOf(
      a,
      'A peer announced a node name another peer id holds; it is listed as a conflict and never handed events.',
    )
    expect(conflictLogs.map((l) => [l.node, l.peer, l.owner])).toEqual([['b', thief.peerId, b.peerId]])

    // Load A far past its high-water mark: it must overflow.
    const acked = new Set<string>()
    for (let i = 0; i < total / 100; i++) {
      const events = Array.from({ length: 100 }, (_, j) => ({ cid: `c-${i * 100 + j}` }))
      const r = await postEvents(a.url, events)
      expect(r.status, JSON.stringify(r.body)).toBe(202)
      for (const e of events) acked.add(e.cid)
    }
    // Everything the liars did not swallow comes out of A or B, exactly once.
    const delivered = () => mergeCounts(slowHook.counts, hookB.counts)
    await waitFor(
      () => {
        const swallowed = liar.taken.size + thief.taken.size
        return delivered().size + swallowed >= total
      },
      { timeoutMs: 120_000, intervalMs: 200, what: `all ${total} events to be processed or swallowed` },
    )
    const counts = delivered()
    const missing = [...acked].filter((id) => !counts.has(id) && !liar.taken.has(id) && !thief.taken.has(id))
    expect(missing).toEqual([])
    expect([...counts.values()].filter((n) => n > 1)).toEqual([])

    const report = { liar: liar.taken.size, thief: thief.taken.size, b: hookB.received(), a: slowHook.received(), warnings: warnings(a) }
    console.log('forged announcers against a loaded node:', JSON.stringify(report))
    expect(thief.taken.size, JSON.stringify(report)).toBe(0)
    expect(liar.taken.size, JSON.stringify(report)).toBeLessThanOrEqual(batch)
    expect(hookB.received(), JSON.stringify(report)).toBeGreaterThan(total / 2)
    const end = await meshStats(a)
    expect(end.peers.find((p) => p.peerId === liar.peerId)?.credit).toBeLessThanOrEqual(0)
    expect(end.counters.handedOff).toBeGreaterThanOrEqual(hookB.received())
  })
})
