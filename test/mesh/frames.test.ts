// Handoff frames of any allowed size (docs/design.md §5): requests and overflow batches of large
// events reach the peer exactly once, split into frames of at most 16 MiB (a frame over
// the 4 MiB read buffer used to reset the stream, silently); an event too big for any
// frame is processed where it is, and a routed one is refused with a 413. Real child
// nodes on loopback with http.maxBodyBytes raised.
import { describe, expect, it } from 'vitest'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { makeTempDir } from '../support/node-process.js'
import {
  bootstrapOf,
  logsOf,
  meshStats,
  mergeCounts,
  postJson,
  startMeshNode,
  startWebhook,
  waitFor,
  waitFullMesh,
  type MeshNode,
  type Webhook,
} from '../support/mesh.js'

cleanUpNodesAfterEach()

const MiB = 1024 * 1024
const http = { maxBodyBytes: '48MiB' }
const mesh = { gossipInterval: '200ms' }
/** Past its high-water mark at once: a few large events are an overflow. */
const tight = { highWaterMark: 2, lowWaterMark: 1, maxEvents: 10_000 }

const big = (cid: string, bytes: number) => ({ cid, pad: 'x'.repeat(bytes) })
const output = (hook: Webhook) => ({ outputs: [{ http: { url: hook.url, timeout: '60s' } }] })

/** Fill A's one worker with small events it holds at a held webhook: what comes next waits in A's queue. */
async function occupyWorker(a: MeshNode): Promise<void> {
  expect(
    (
      await postJson(
        `${a.url}/events/p`,
        Array.from({ length: 40 }, (_, i) => ({ cid: `small-${i}` })),
      )
    ).status,
  ).toBe(202)
  await waitFor(async () => (await meshStats(a)).queue.inflight > 0, { what: "A's worker to hold events at its webhook" })
}

/**
 * POST as a client does: a 503 (the peer may or may not have the events, or none could
 * take them just now) or a 404 (no fresh announcement of the pipeline on a busy box) is
 * retried with the same Idempotency-Key, which the receivers' dedupe makes safe.
 */
async function postRetrying(url: string, body: unknown, key: string): Promise<{ status: number; body: Record<string, unknown> }> {
  let last: { status: number; body: Record<string, unknown> } | undefined
  try {
    return await waitFor(
      async () => {
        last = await postJson(url, body, { 'idempotency-key': key })
        return last.status === 503 || last.status === 404 ? undefined : last
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `POST ${url} to be answered other than 503/404` },
    )
  } catch (err) {
    throw new Error(`${(err as Error).message}; last answer ${JSON.stringify(last)}`)
  }
}

function expectOnce(counts: Map<string, number>, cids: string[]): void {
  const wrong = cids.filter((cid) => counts.get(cid) !== 1).map((cid) => `${cid}: ${counts.get(cid) ?? 0}`)
  expect(wrong).toEqual([])
}

describe('handoff frames', () => {
  it('a routed 6 MiB and a routed 20 MiB request, and an overflow of 24 MiB of events, reach the peer exactly once', {
    timeout: 240_000,
  }, async () => {
    const dir = makeTempDir('binge-mesh-frames-')
    const [hookA, hookB, hookBig] = await Promise.all([startWebhook({ held: true }), startWebhook(), startWebhook()])
    const a = await startMeshNode({ id: 'a', dir, pipelines: { p: output(hookA) }, workers: 1, queue: tight, http, mesh })
    const b = await startMeshNode({
      id: 'b',
      dir,
      bootstrap: [bootstrapOf(a)],
      pipelines: { p: output(hookB), big: output(hookBig) },
      http,
      mesh,
    })
    await waitFullMesh([a, b])
    await waitFor(async () => (await meshStats(a)).peers.some((p) => p.node === 'b' && p.pipelines.includes('big')), {
      what: 'A to hear that B runs "big"',
    })

    // Routed: A does not run "big". 6 MiB goes in one frame, 20 MiB in two.
    const routed6 = Array.from({ length: 6 }, (_, i) => big(`route6-${i}`, MiB))
    const routed20 = Array.from({ length: 20 }, (_, i) => big(`route20-${i}`, MiB))
    for (const [key, events] of [
      ['route6', routed6],
      ['route20', routed20],
    ] as const) {
      const res = await postRetrying(`${a.url}/events/big`, events, key)
      expect(res.status, JSON.stringify(res.body)).toBe(202)
    }
    const routedCids = [...routed6, ...routed20].map((e) => e.cid)
    await waitFor(() => routedCids.every((cid) => hookBig.counts.has(cid)), { timeoutMs: 60_000, what: 'B to process every routed event' })

    // Overflow: 24 MiB of events waiting at A, over its high-water mark.
    await occupyWorker(a)
    const overflow = Array.from({ length: 24 }, (_, i) => big(`over-${i}`, MiB))
    expect((await postJson(`${a.url}/events/p`, overflow)).status).toBe(202)
    await waitFor(
      async () => {
        const s = await meshStats(a)
        return s.queue.unprocessed <= tight.lowWaterMark && (s.queue.handingOff ?? 0) === 0 && (s.counters.handedOff ?? 0) >= 20
      },
      { timeoutMs: 60_000, what: 'A to hand its large events to B and hear B take them' },
    )
    expect(logsOf(a, 'A handoff had an unknown outcome; the same batch will be resent to the same peer.')).toEqual([])

    hookA.release()
    const overflowCids = [...overflow.map((e) => e.cid), ...Array.from({ length: 40 }, (_, i) => `small-${i}`)]
    await waitFor(() => overflowCids.every((cid) => mergeCounts(hookA.counts, hookB.counts).has(cid)), {
      timeoutMs: 60_000,
      what: 'every overflow event to be processed',
    })
    await Promise.all([a, b].map((n) => n.proc.waitDrained(30_000)))
    expectOnce(hookBig.counts, routedCids)
    expectOnce(mergeCounts(hookA.counts, hookB.counts), overflowCids)
    expect(hookB.counts.size).toBeGreaterThanOrEqual(20)
    const sb = await meshStats(b)
    console.log(
      `frames: routed 6 MiB and 20 MiB; overflow of 24 x 1 MiB: A handed off ${(await meshStats(a)).counters.handedOff}, B took ${sb.counters.handedIn}`,
    )
  })

  it('an event bigger than any frame stays and is processed where it is; routed, it gets a 413', { timeout: 180_000 }, async () => {
    const dir = makeTempDir('binge-mesh-frames-huge-')
    const [hookA, hookB, hookQ] = await Promise.all([startWebhook({ held: true }), startWebhook(), startWebhook()])
    const a = await startMeshNode({ id: 'a', dir, pipelines: { p: output(hookA) }, workers: 1, queue: tight, http, mesh })
    const b = await startMeshNode({
      id: 'b',
      dir,
      bootstrap: [bootstrapOf(a)],
      pipelines: { p: output(hookB), q: output(hookQ) },
      http,
      mesh,
    })
    await waitFullMesh([a, b])
    await waitFor(async () => (await meshStats(a)).peers.some((p) => p.node === 'b' && p.pipelines.includes('q')), {
      what: 'A to hear that B runs "q"',
    })

    const routed = await postRetrying(`${a.url}/events/q`, big('huge-routed', 17 * MiB), 'huge-routed')
    expect(routed.status, JSON.stringify(routed.body)).toBe(413)
    expect(String(routed.body.error)).toContain('more than a mesh handoff carries')

    await occupyWorker(a)
    expect((await postJson(`${a.url}/events/p`, big('huge', 17 * MiB))).status).toBe(202)
    expect((await postJson(`${a.url}/events/p`, [{ cid: 'after-1' }, { cid: 'after-2' }])).status).toBe(202)
    // The small ones go; the huge one stays, promised to no one.
    await waitFor(
      async () => {
        const s = await meshStats(a)
        return (s.counters.handedOff ?? 0) >= 2 && (s.queue.handingOff ?? 0) === 0 ? s : undefined
      },
      { timeoutMs: 30_000, what: 'A to hand off the small events' },
    )
    hookA.release()
    await waitFor(() => hookA.counts.has('huge'), { timeoutMs: 60_000, what: 'A to process the huge event itself' })
    await Promise.all([a, b].map((n) => n.proc.waitDrained(30_000)))
    const counts = mergeCounts(hookA.counts, hookB.counts)
    expectOnce(counts, ['huge', 'after-1', 'after-2', ...Array.from({ length: 40 }, (_, i) => `small-${i}`)])
    expect(hookB.counts.has('huge')).toBe(false)
    expect(hookQ.received()).toBe(0)
    expect(logsOf(a, 'A handoff had an unknown outcome; the same batch will be resent to the same peer.')).toEqual([])
  })
})
