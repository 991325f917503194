// A peer that stops answering handoffs (docs/design.md §5): C is frozen (SIGSTOP) while its
// connection stays up and its last gossip still says it is empty, so by load alone A
// would give C every batch. A judges C by C's own answers: C gets one batch, which it
// has not answered, and the rest of A's overflow goes to B at once, not after the
// handoff timeout. When C thaws it takes its one batch; every event is processed once.
import { describe, expect, it } from 'vitest'
import { freezerWithCleanUp } from '../support/hooks.js'
import { makeTempDir } from '../support/node-process.js'
import {
  bootstrapOf,
  checkExactlyOnce,
  meshStats,
  mergeCounts,
  postJson,
  startMeshNode,
  startWebhook,
  waitFor,
  waitFullMesh,
  type MeshNode,
} from '../support/mesh.js'

const freeze = freezerWithCleanUp()

const batch = 25
// The handoff timeout (10 s) is what A waited, with every slot on C, before the fix.
const mesh = { gossipInterval: '250ms', handoffTimeout: '10s', handoffBatch: batch, handoffConcurrency: 4 }
/** Well under the handoff timeout, with room for a busy box. */
const promptMs = 5_000

describe('a peer that stops answering handoffs', () => {
  it('holds one batch, and the overflow goes to the peer that answers at once', { timeout: 180_000 }, async () => {
    const dir = makeTempDir('binge-mesh-stuck-')
    const [hookA, hookB, hookC] = await Promise.all([startWebhook({ held: true }), startWebhook({ held: true }), startWebhook()])
    const pipelines = (url: string) => ({ p: { outputs: [{ http: { url, timeout: '60s' } }] } })
    const roomy = { highWaterMark: 1_000, lowWaterMark: 500, maxEvents: 100_000 }
    const a = await startMeshNode({
      id: 'a',
      dir,
      pipelines: pipelines(hookA.url),
      workers: 1,
      queue: { highWaterMark: 100, lowWaterMark: 50, maxEvents: 100_000 },
      mesh,
    })
    const [b, c] = await Promise.all([
      startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines: pipelines(hookB.url), workers: 1, queue: roomy, mesh }),
      startMeshNode({ id: 'c', dir, bootstrap: [bootstrapOf(a)], pipelines: pipelines(hookC.url), workers: 1, queue: roomy, mesh }),
    ])
    await waitFullMesh([a, b, c])
    // B has a backlog of its own (its worker waits at a held webhook): by load, C is A's first choice.
    const sent = new Set<string>()
    const post = async (n: MeshNode, prefix: string, count: number) => {
      const events = Array.from({ length: count }, (_, i) => ({ cid: `${prefix}-${i}` }))
      expect((await postJson(`${n.url}/events`, events)).status).toBe(202)
      for (const e of events) sent.add(e.cid)
    }
    await post(b, 'b', 400)
    await waitFor(
      async () => {
        const peers = (await meshStats(a)).peers
        return (
          peers.some((p) => p.node === 'b' && p.load.depth >= 300) && peers.some((p) => p.node === 'c' && p.load.depth === 0 && p.connected)
        )
      },
      { what: "A to hear B's backlog and C's empty queue" },
    )

    freeze(c, true)
    const overloadedAt = Date.now()
    await post(a, 'a', 300)
    const firstToB = await waitFor(async () => ((await meshStats(b)).counters.handedIn! > 0 ? Date.now() : undefined), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'B to take a batch from A',
    })
    const toBMs = firstToB - overloadedAt
    console.log(`stuck peer: B took its first batch ${toBMs} ms after A went over its high-water mark`)
    // A gets down to its low-water mark through B alone; C holds what it was given before it stopped answering.
    // (Batches to B are promised too until B answers: wait for those answers.)
    const promisedToC = await waitFor(
      async () => {
        const s = await meshStats(a)
        const promised = s.queue.handingOff ?? 0
        return s.queue.unprocessed <= 50 && promised <= batch ? promised : undefined
      },
      { timeoutMs: 20_000, what: 'A to reach its low-water mark with at most one batch promised to the frozen C' },
    )
    console.log(`stuck peer: ${promisedToC} events promised to the frozen C`)
    expect(toBMs).toBeLessThan(promptMs)

    freeze(c, false)
    await waitFor(async () => ((await meshStats(a)).queue.handingOff ?? 0) === 0, {
      timeoutMs: 60_000,
      what: "C to take A's batch once it thaws",
    })
    expect((await meshStats(c)).counters.handedIn).toBeLessThanOrEqual(batch)

    // Again, now that C has answered A before: C may be given a batch per slot before it
    // is seen to stall, but once it is, its sends hold one slot and B gets the rest.
    await waitFor(async () => (await meshStats(a)).peers.some((p) => p.node === 'c' && p.load.depth === 0 && p.ageMs < 500), {
      what: 'A to hear C empty again',
    })
    const takenByB = (await meshStats(b)).counters.handedIn
    freeze(c, true)
    const againAt = Date.now()
    await post(a, 'again', 300)
    const againToB = await waitFor(async () => ((await meshStats(b)).counters.handedIn! > takenByB! ? Date.now() : undefined), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'B to take a batch from A again',
    })
    console.log(`stuck peer that answered before: B took a batch ${againToB - againAt} ms after A went over its high-water mark`)
    expect(againToB - againAt).toBeLessThan(promptMs)
    await waitFor(async () => (await meshStats(a)).queue.unprocessed <= 50, {
      timeoutMs: 20_000,
      what: 'A to reach its low-water mark again',
    })
    freeze(c, false)
    await waitFor(async () => ((await meshStats(a)).queue.handingOff ?? 0) === 0, {
      timeoutMs: 60_000,
      what: "C to take A's batches once it thaws again",
    })
    hookA.release()
    hookB.release()
    const hooks = [hookA, hookB, hookC]
    await waitFor(() => hooks.reduce((n, h) => n + h.received(), 0) >= sent.size, {
      timeoutMs: 60_000,
      what: 'every event to be processed',
    })
    await Promise.all([a, b, c].map((n) => n.proc.waitDrained(30_000)))
    const report = checkExactlyOnce(sent, mergeCounts(...hooks.map((h) => h.counts)))
    expect(report.lost).toEqual([])
    expect(report.duplicates).toBe(0)
    expect(report.phantoms).toEqual([])
  })
})
