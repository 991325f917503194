import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log.js'
import { Metrics } from '../../src/metrics.js'
import { meshForwarder } from '../../src/pipeline/outputs/forward.js'
import { Pipeline } from '../../src/pipeline/pipeline.js'
import { TraceStore } from '../../src/trace.js'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'
import { readJsonLines as lines } from '../support/json-lines.js'

const nodes: TempNode[] = []
afterEach(async () => {
  for (const n of nodes.splice(0).reverse()) await n.close()
})

const mesh = (bootstrap: string[] = []) => `
mesh:
  listen: /ip4/127.0.0.1/tcp/0
  bootstrap: ${JSON.stringify(bootstrap)}
  gossipInterval: 100ms
`

describe('forward output over the mesh', () => {
  it('hands the transformed event to the peer running the pipeline, exactly once even when forwarded again', async () => {
    const a = await startTempNode(
      `${mesh()}
pipelines:
  relay:
    steps: [ { map: '$merge([$, {"relayed": true}])' } ]
    outputs: [ { forward: { pipeline: archive } } ]
    onFail: { retry: { attempts: 100, backoff: 50ms, maxBackoff: 200ms } }
`,
      { id: 'a' },
    )
    nodes.push(a)
    const address = a.node.mesh!.addresses().find((m) => m.startsWith('/ip4/127.0.0.1/tcp/'))!
    const b = await startTempNode(
      `${mesh([address])}
pipelines:
  archive:
    outputs: [ { file: { path: $DIR/archive.jsonl } } ]
`,
      { id: 'b' },
    )
    nodes.push(b)

    const res = await a.node.app.request('/events', {
      method: 'POST',
      body: JSON.stringify({ n: 1 }),
      headers: { 'content-type': 'application/json' },
    })
    const [id] = ((await res.json()) as { ids: string[] }).ids
    const archive = join(b.dir, 'archive.jsonl')
    await waitFor(() => lines(archive).length === 1, { what: 'the forwarded event on node b', timeoutMs: 30_000 })
    expect(lines(archive)[0]).toEqual({
      id: `${id}/archive`,
      pipeline: 'archive',
      node: 'b',
      origin: 'a',
      receivedAt: expect.stringMatching(/^\d{4}-/),
      data: { n: 1, relayed: true },
    })
    await waitFor(() => a.node.queue.depth().unprocessed + a.node.queue.depth().inflight === 0, { what: 'node a to drain' })
    expect(a.node.stats().counters).toMatchObject({ processed: 1, failed: 0 })

    // The same source event through the same forward again: the same derived id, so b drops it.
    const config = parseConfig(`pipelines:\n  relay:\n    outputs: [ { forward: { pipeline: archive } } ]\n`, 'again.yaml', {})
    const again = new Pipeline(
      { name: 'relay', ...config.pipelines.relay! },
      {
        nodeId: 'a',
        log: silentLogger,
        trace: new TraceStore('a'),
        metrics: new Metrics('a', () => ({ unprocessed: 0, inflight: 0, handingOff: 0, deadletter: 0, bytes: 0 }), {
          defaultMetrics: false,
        }),
        forward: meshForwarder(() => a.node.mesh),
      },
    )
    const event = { id: id!, origin: 'a', receivedAt: Date.now(), hops: 0, data: { n: 1, relayed: true } }
    expect(await again.runBatch([event], new AbortController().signal)).toEqual([{ status: 'processed', state: [] }])
    await waitFor(() => b.node.queue.depth().unprocessed + b.node.queue.depth().inflight === 0, { what: 'node b to drain' })
    await new Promise((r) => setTimeout(r, 300))
    expect(lines(archive).map((l) => l.id)).toEqual([`${id}/archive`])
    expect(b.node.stats().counters).toMatchObject({ processed: 1 })
  })
})
