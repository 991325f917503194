// Routing (docs/design.md §2, §3): POST /events/PIPELINE at a node that does not run the pipeline
// goes to a peer that announced it; with no such peer, 404. GET /events/ID at the
// node that took the POST follows the event across the handoff to where it was done.
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { TraceStep } from '../../src/trace.js'
import { cleanUpNodesAfterEach } from '../support/hooks.js'
import { makeTempDir, readOutput } from '../support/node-process.js'
import { bootstrapOf, meshStats, postJson, startMeshNode, startWebhook, waitFor, waitFullMesh } from '../support/mesh.js'

cleanUpNodesAfterEach()

describe('routing by pipeline', () => {
  it('routes POST /events/only-c to the one node that runs it; 404 for a pipeline nobody runs; the trace follows the handoff', async () => {
    const dir = makeTempDir('binge-mesh-route-')
    const hook = await startWebhook()
    const common = { p: { outputs: [{ http: { url: hook.url, timeout: '5s' } }] } }
    const outC = path.join(dir, 'only-c.jsonl')
    const a = await startMeshNode({ id: 'a', dir, pipelines: common })
    const [b, c] = await Promise.all([
      startMeshNode({ id: 'b', dir, bootstrap: [bootstrapOf(a)], pipelines: common }),
      startMeshNode({
        id: 'c',
        dir,
        bootstrap: [bootstrapOf(a)],
        pipelines: { ...common, 'only-c': { outputs: [{ file: { path: outC } }] } },
      }),
    ])
    await waitFullMesh([a, b, c])
    // A learns what C runs from C's gossip.
    await waitFor(async () => (await meshStats(a)).peers.some((p) => p.node === 'c' && p.pipelines.includes('only-c')), {
      what: 'A to hear that C runs only-c',
    })

    // A pipeline nobody runs: 404, nothing queued anywhere.
    const nobody = await postJson(`${a.url}/events/nobody`, { x: 1 })
    expect(nobody.status).toBe(404)
    expect(String(nobody.body.error)).toContain('nobody')

    // One event, and a batch, both with keys so we know their ids.
    const one = await postJson(`${a.url}/events/only-c`, { cid: 'route-1' }, { 'idempotency-key': 'route-1' })
    expect(one.status).toBe(202)
    expect(one.body.ids).toEqual(['route-1'])
    const batch = await postJson(`${a.url}/events/only-c`, [{ cid: 'route-b0' }, { cid: 'route-b1' }, { cid: 'route-b2' }], {
      'idempotency-key': 'route-b',
    })
    expect(batch.status).toBe(202)
    expect(batch.body.ids).toEqual(['route-b-0', 'route-b-1', 'route-b-2'])
    // The same key again: a duplicate, not a second copy, answered as one. A remembers
    // the ids it routed; a key it has not seen but C has is reported from C's answer.
    const again = await postJson(`${a.url}/events/only-c`, { cid: 'route-1' }, { 'idempotency-key': 'route-1' })
    expect(again.status).toBe(202)
    expect(again.body).toMatchObject({ ids: ['route-1'], duplicate: true })
    const batchAgain = await postJson(
      `${a.url}/events/only-c`,
      [{ cid: 'route-b0' }, { cid: 'route-b1' }, { cid: 'route-b2' }, { cid: 'route-b3' }],
      { 'idempotency-key': 'route-b' },
    )
    expect(batchAgain.status).toBe(202)
    expect(batchAgain.body).toMatchObject({ duplicate: false, duplicates: ['route-b-0', 'route-b-1', 'route-b-2'] })
    // At B, which never saw the key, C's answer names the id it had.
    await waitFor(async () => (await meshStats(b)).peers.some((p) => p.node === 'c' && p.pipelines.includes('only-c')), {
      what: 'B to hear that C runs only-c',
    })
    const atB = await postJson(`${b.url}/events/only-c`, { cid: 'route-1' }, { 'idempotency-key': 'route-1' })
    expect(atB.status).toBe(202)
    expect(atB.body).toMatchObject({ ids: ['route-1'], duplicate: true })

    const expected = ['route-1', 'route-b0', 'route-b1', 'route-b2', 'route-b3']
    await waitFor(() => expected.every((cid) => readOutput(outC).counts.has(cid)), {
      timeoutMs: 20_000,
      what: "the routed events in C's output",
    })
    // Let C finish whatever it holds, then count: each exactly once, all done by C.
    await c.proc.waitDrained(20_000)
    const out = readOutput(outC)
    for (const cid of expected) expect(out.counts.get(cid), cid).toBe(1)
    expect(out.records.length).toBe(expected.length)
    for (const r of out.records) {
      expect(r.node).toBe('c')
      expect(r.origin).toBe('a')
      expect(r.pipeline).toBe('only-c')
    }
    // Not run by the pipeline the others have: the common webhook saw none of them.
    expect(hook.received()).toBe(0)

    const [sa, sb, sc] = await Promise.all([meshStats(a), meshStats(b), meshStats(c)])
    expect(sa.queue.unprocessed + sa.queue.inflight).toBe(0)
    expect(sa.counters.handedOff).toBe(5)
    expect(sa.counters.processed).toBe(0)
    expect(sb.counters.handedIn).toBe(0)
    expect(sb.counters.handedOff).toBe(1) // the duplicate went to C, which dropped it
    expect(sc.counters.handedIn).toBe(5)
    expect(sc.counters.processed).toBe(5)

    // The trace at A follows the event to C: received and handed off at A, handed in,
    // processed and acked at C, in that order.
    const trace = await waitFor(
      async () => {
        const res = await fetch(`${a.url}/events/route-1`)
        if (res.status !== 200) return undefined
        const body = (await res.json()) as { id: string; node: string; trace: TraceStep[] }
        return body.trace.some((s) => s.node === 'c' && s.state === 'acked') ? body : undefined
      },
      { timeoutMs: 10_000, what: 'the trace of route-1 at A to show it acked at C' },
    )
    expect(trace.id).toBe('route-1')
    const steps = trace.trace.map((s) => `${s.node}:${s.state}`)
    const order = ['a:received', 'a:handedOff', 'c:handedIn', 'c:processed', 'c:acked']
    const at = order.map((step) => steps.indexOf(step))
    expect(at, `trace ${JSON.stringify(steps)}`).not.toContain(-1)
    expect([...at].sort((x, y) => x - y)).toEqual(at)
    const handedOff = trace.trace.find((s) => s.state === 'handedOff')!
    expect(handedOff.peer).toBe(c.peerId)
    expect(trace.trace.some((s) => s.node === 'b')).toBe(false)
    // At C the same id has its own trace, without A's part.
    const atC = (await (await fetch(`${c.url}/events/route-1`)).json()) as { trace: TraceStep[] }
    expect(atC.trace.every((s) => s.node === 'c')).toBe(true)
    // B never saw this one.
    expect((await fetch(`${b.url}/events/route-b-0`)).status).toBe(404)
  })
})
