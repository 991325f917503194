// Overflow (docs/design.md §5, §6): a node whose output is slow gets far more events than it can
// process; past its high-water mark it hands the newest to its peers until it is at
// its low-water mark. Every acknowledged event comes out exactly once across the
// three nodes' outputs: handoff loses nothing and adds no duplicate processing.
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { makeTempDir, startIngestClients } from '../support/node-process.js'
import {
  bootstrapOf,
  checkExactlyOnce,
  meshStats,
  mergeCounts,
  startMeshNode,
  startWebhook,
  waitFor,
  waitFullMesh,
  warnings,
} from '../support/mesh.js'

cleanUpNodesAfterEach()

const total = 20_000
const marks = { highWaterMark: 500, lowWaterMark: 200, maxEvents: 100_000 }
// B and C buffer more before they pass work on themselves (they would, to each other).
const roomy = { highWaterMark: 5_000, lowWaterMark: 2_000, maxEvents: 100_000 }
const retry = { retry: { attempts: 10, backoff: '50ms', maxBackoff: '1s' } }
const pipelines = (url: string) => ({ p: { outputs: [{ http: { url, timeout: '5s' } }], onFail: retry } })

describe('overflow', () => {
  // About 30 CPU-seconds of work across four processes: 40 s on a quiet 2-core box;
  // the deadlines leave room for a busy one, and only correctness fails the test.
  it('hands the excess of a slow node to its peers; every acked event is processed exactly once', { timeout: 240_000 }, async () => {
    const dir = makeTempDir('binge-mesh-overflow-')
    const [slowHook, hookB, hookC] = await Promise.all([startWebhook({ delayMs: 40, perEventMs: 20 }), startWebhook(), startWebhook()])
    const a = await startMeshNode({ id: 'a', dir, pipelines: pipelines(slowHook.url), queue: marks })
    const [b, c] = await Promise.all([
      startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines: pipelines(hookB.url), queue: roomy }),
      startMeshNode({ id: 'c', dir, bootstrap: [bootstrapOf(a)], pipelines: pipelines(hookC.url), queue: roomy }),
    ])
    await waitFullMesh([a, b, c])
    // A must know B's and C's load before it can hand anything to them.
    await waitFor(async () => (await meshStats(a)).peers.filter((p) => p.ageMs < 2_000).length === 2, { what: 'A to hear B and C gossip' })

    const ingestStarted = Date.now()
    let maxDepthA = 0
    const clients = startIngestClients({ clients: 12, maxBatch: 50, prefix: 'o', target: () => a.url })
    await waitFor(
      async () => {
        const s = await meshStats(a)
        maxDepthA = Math.max(maxDepthA, s.queue.unprocessed)
        return clients.ledger.acked.size + clients.ledger.rejected.size + clients.ledger.unknown.size >= total
      },
      { timeoutMs: 150_000, intervalMs: 100, what: `${total} events to be posted to A` },
    )
    await clients.stop()
    const ingestMs = Date.now() - ingestStarted
    const { ledger } = clients
    expect(ledger.malformed).toEqual([])
    expect(ledger.rejected.size).toBe(0)
    expect(ledger.unknown.size).toBe(0)
    expect(ledger.acked.size).toBeGreaterThanOrEqual(total)

    // Past its high-water mark A offloads down to its low-water mark: it gets there
    // long before it could have processed that much itself (about 100 events/s).
    const lowStarted = Date.now()
    await waitFor(
      async () => {
        const s = await meshStats(a)
        return s.queue.unprocessed <= marks.lowWaterMark
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'A to get down to its low-water mark' },
    )
    const lowMs = Date.now() - lowStarted

    const hooks = [slowHook, hookB, hookC]
    await waitFor(() => hooks.reduce((n, h) => n + h.received(), 0) >= ledger.acked.size, {
      timeoutMs: 90_000,
      intervalMs: 100,
      what: 'every acked event to reach an output',
    })
    await Promise.all([a, b, c].map((n) => n.proc.waitDrained(30_000)))
    const counts = mergeCounts(...hooks.map((h) => h.counts))
    const report = checkExactlyOnce(ledger.acked, counts)
    expect(report.lost).toEqual([])
    expect(report.duplicates).toBe(0)
    expect(report.phantoms).toEqual([])

    const [sa, sb, sc] = await Promise.all([meshStats(a), meshStats(b), meshStats(c)])
    for (const [n, s] of [
      [a, sa],
      [b, sb],
      [c, sc],
    ] as const) {
      console.log(`${n.id}: ${JSON.stringify(s.counters)} warnings ${JSON.stringify(warnings(n))}`)
    }
    expect(sa.queue.unprocessed).toBeLessThan(marks.lowWaterMark)
    expect(sa.queue.handingOff ?? 0).toBe(0)
    expect(sb.counters.handedIn).toBeGreaterThan(0)
    expect(sc.counters.handedIn).toBeGreaterThan(0)
    // Every event handed out (by A, or by B or C when they passed their own high-water
    // mark) was handed in somewhere, and each node's output saw exactly what it processed.
    const sum = (k: string) => [sa, sb, sc].reduce((n, s) => n + (s.counters[k] ?? 0), 0)
    expect(sum('handedIn')).toBe(sum('handedOff'))
    expect(sum('takenBack')).toBe(0)
    expect(slowHook.received()).toBe(sa.counters.processed)
    expect(hookB.received()).toBe(sb.counters.processed)
    expect(hookC.received()).toBe(sc.counters.processed)
    console.log(
      `overflow: ${ledger.acked.size} acked in ${ingestMs} ms (A's depth peaked at ${maxDepthA}); A at its low-water mark ${lowMs} ms after ingest ended; ` +
        `A handedOff ${sa.counters.handedOff}, B in ${sb.counters.handedIn} out ${sb.counters.handedOff}, C in ${sc.counters.handedIn} out ${sc.counters.handedOff}; processed A ${sa.counters.processed} B ${sb.counters.processed} C ${sc.counters.processed}; ` +
        `lost ${report.lost.length}, duplicates ${report.duplicates}`,
    )
  })
})
