// Joining the mesh with a local config alone (docs/design.md §5): a chain of bootstraps forms a
// full mesh, a late node that names one peer meets all of them within seconds and
// takes a share of the overflow, the peer id survives a restart, and a killed node
// that comes back rejoins by itself.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { makeTempDir } from '../support/node-process.js'
import {
  bootstrapOf,
  checkExactlyOnce,
  connectedPeers,
  meshStats,
  mergeCounts,
  postJson,
  restartMeshNode,
  startMeshNode,
  startWebhook,
  waitFor,
  waitFullMesh,
  type MeshNode,
} from '../support/mesh.js'

cleanUpNodesAfterEach()

const retry = { retry: { attempts: 10, backoff: '50ms', maxBackoff: '1s' } }

describe('joining the mesh', () => {
  it('forms a full mesh from a chain of bootstraps; a late node meets everyone within 10 s and takes handoffs', {
    timeout: 180_000,
  }, async () => {
    const dir = makeTempDir('binge-mesh-join-')
    // A is slow, so it overflows. B and C are full: their output holds every POST until
    // the test releases it, and the 10 events each of them holds (all in flight) are its
    // hard cap, so they announce that they take nothing. D is the one peer with room.
    const slow = await startWebhook({ delayMs: 40, perEventMs: 20 })
    const gate = await startWebhook({ held: true })
    const fast = await startWebhook()
    const pipeline = (url: string) => ({ p: { outputs: [{ http: { url, timeout: '60s' } }], onFail: retry } })
    const full = { highWaterMark: 5, lowWaterMark: 2, maxEvents: 10 }

    const a = await startMeshNode({ id: 'a', dir, pipelines: pipeline(slow.url), queue: { highWaterMark: 300, lowWaterMark: 100 } })
    const b = await startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines: pipeline(gate.url), workers: 1, queue: full })
    const c = await startMeshNode({ id: 'c', dir, bootstrap: [bootstrapOf(b)], pipelines: pipeline(gate.url), workers: 1, queue: full })
    const ids: string[] = []
    for (const n of [b, c]) {
      const events = Array.from({ length: 10 }, (_, i) => ({ cid: `${n.id}-own-${i}` }))
      const res = await fetch(`${n.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(events),
      })
      expect(res.status).toBe(202)
      ids.push(...events.map((e) => e.cid))
      await waitFor(async () => (await meshStats(n)).queue.inflight === 10, { what: `${n.id} to hold its 10 events in flight` })
    }
    await waitFullMesh([a, b, c], 30_000)
    const meshMs = Date.now() - c.readyAt

    for (const n of [a, b, c]) {
      const s = await meshStats(n)
      expect(s.peerId).toBe(n.peerId)
      const others = [a, b, c].filter((o) => o !== n)
      expect(s.peers.map((p) => p.node).sort()).toEqual(others.map((o) => o.id).sort())
      for (const p of s.peers) {
        expect(p.connected).toBe(true)
        expect(p.pipelines).toEqual(['p'])
        expect(p.http).toBe([a, b, c].find((o) => o.peerId === p.peerId)?.url)
      }
    }

    const d = await startMeshNode({ id: 'd', dir, bootstrap: [bootstrapOf(c)], pipelines: pipeline(fast.url) })
    await waitFullMesh([a, b, c, d], 10_000)
    const joinMs = Date.now() - d.readyAt
    const readyLog = d.proc.logs.find((l) => l.msg === 'The node is ready.')
    const timeline = d.proc.logs
      .filter((l) => /mesh|Connected/.test(String(l.msg)))
      .map(
        (l) =>
          `${Date.parse(String(l.time)) - Date.parse(String(readyLog?.time))} ms ${String(l.msg)} ${String(l.peer ?? l.target ?? '').slice(-6)}`,
      )
    console.log(`D's join, relative to its ready log line:\n  ${timeline.join('\n  ')}`)
    expect(joinMs).toBeLessThan(10_000)

    // B and C announce that they take nothing; D has room.
    await waitFor(
      async () => {
        const peers = (await meshStats(a)).peers
        const accepting = (id: string) => peers.find((p) => p.node === id)?.load.accepting
        return accepting('b') === false && accepting('c') === false && accepting('d') === true
      },
      { what: 'A to hear that B and C are full and D is not' },
    )

    // Overflow A (20 concurrent POSTs of 50): its handoffs can only go to D.
    const batches = Array.from({ length: 20 }, (_, batch) => Array.from({ length: 50 }, (_, i) => ({ cid: `a${batch}-${i}` })))
    const answers = await Promise.all(batches.map((events) => postJson(`${a.url}/events`, events)))
    expect(answers.map((r) => r.status)).toEqual(batches.map(() => 202))
    ids.push(...batches.flat().map((e) => e.cid))
    await waitFor(async () => ((await meshStats(d)).counters.handedIn ?? 0) > 0, { timeoutMs: 30_000, what: 'D to take a handoff' })
    // Settled: A at its low-water mark with no batch still on its way.
    await waitFor(
      async () => {
        const s = await meshStats(a)
        return s.queue.unprocessed <= 100 && s.queue.handingOff === 0
      },
      { timeoutMs: 60_000, what: 'A to get down to its low-water mark, no handoff outstanding' },
    )
    const [aStats, bStats, cStats, dStats] = await Promise.all([meshStats(a), meshStats(b), meshStats(c), meshStats(d)])
    expect(aStats.counters.handedOff).toBeGreaterThan(0)
    expect(dStats.counters.handedIn).toBe(aStats.counters.handedOff)
    expect(bStats.counters.handedIn).toBe(0)
    expect(cStats.counters.handedIn).toBe(0)

    // Release B's and C's output: everything comes out exactly once, wherever it was processed.
    gate.release()
    await waitFor(() => slow.received() + gate.received() + fast.received() >= ids.length, {
      timeoutMs: 90_000,
      what: 'every event to be delivered',
    })
    await Promise.all([a, b, c, d].map((n) => n.proc.waitDrained(30_000)))
    const counts = mergeCounts(slow.counts, gate.counts, fast.counts)
    expect(checkExactlyOnce(new Set(ids), counts)).toEqual({ acked: ids.length, lost: [], duplicates: 0, phantoms: [] })
    console.log(
      `join: full mesh of 3 ${meshMs} ms after C was ready; D connected to all ${joinMs} ms after ready; A handedOff ${aStats.counters.handedOff}, all to D (D handedIn ${dStats.counters.handedIn}, output ${fast.received()})`,
    )
  })

  it('keeps its peer id across a restart; a killed and restarted node rejoins by itself', { timeout: 180_000 }, async () => {
    const dir = makeTempDir('binge-mesh-rejoin-')
    const hook = await startWebhook()
    const pipelines = { p: { outputs: [{ http: { url: hook.url, timeout: '5s' } }], onFail: retry } }
    const a = await startMeshNode({ id: 'a', dir, pipelines })
    const b = await startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines })
    let c: MeshNode = await startMeshNode({ id: 'c', dir, bootstrap: [bootstrapOf(b)], pipelines })
    await waitFullMesh([a, b, c])

    const keyFile = path.join(c.dataDir, 'peer-key')
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600)
    const before = c.peerId

    // kill -9: nothing is shut down cleanly, the peers see the connections drop.
    await c.proc.kill('SIGKILL')
    await Promise.all(
      [a, b].map((n) => waitFor(async () => !(await connectedPeers(n)).has(before), { timeoutMs: 30_000, what: `${n.id} to see C gone` })),
    )

    c = await restartMeshNode(c)
    expect(c.peerId).toBe(before)
    expect((await meshStats(c)).peerId).toBe(before)
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600)
    await waitFullMesh([a, b, c], 30_000)
    const rejoinMs = Date.now() - c.readyAt
    // Not a stale entry from before the kill: A and B hear the new run's gossip (its
    // HTTP port is new, the OS chose it again).
    for (const n of [a, b]) {
      await waitFor(async () => (await meshStats(n)).peers.some((p) => p.peerId === before && p.http === c.url && p.ageMs < 2_000), {
        timeoutMs: 20_000,
        what: `${n.id} to hear the restarted C's gossip`,
      })
    }

    // A node the restarted one does not name in its config (A) sees it back too, and
    // events still flow: C takes a POST and processes it.
    const res = await fetch(`${c.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid: 'after-restart' }),
    })
    expect(res.status).toBe(202)
    await waitFor(() => hook.counts.get('after-restart') === 1, {
      timeoutMs: 15_000,
      what: 'the event posted after the restart to be delivered',
    })

    // Now the other way round: kill a node that others bootstrapped from (A) and bring
    // it back; it names no bootstrap itself, so B and C must redial it.
    const aId = a.peerId
    await a.proc.kill('SIGKILL')
    await Promise.all(
      [b, c].map((n) => waitFor(async () => !(await connectedPeers(n)).has(aId), { timeoutMs: 30_000, what: `${n.id} to see A gone` })),
    )
    const a2 = await restartMeshNode(a, { samePort: true })
    expect(a2.peerId).toBe(aId)
    await waitFullMesh([a2, b, c], 45_000)
    const aRejoinMs = Date.now() - a2.readyAt
    for (const n of [b, c]) {
      await waitFor(async () => (await meshStats(n)).peers.some((p) => p.peerId === aId && p.http === a2.url), {
        timeoutMs: 20_000,
        what: `${n.id} to hear the restarted A's gossip`,
      })
    }
    console.log(`rejoin: C (bootstraps from B) back in ${rejoinMs} ms, A (no bootstrap, others redial it) back in ${aRejoinMs} ms`)
  })
})
