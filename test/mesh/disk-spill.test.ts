// Below queue.minFreeDisk a node takes no new events itself, but ingest still works:
// the events go to a peer with room, on the same path as at the hard cap (node.ts
// admit/viaPeer), and the node's gossip says it takes no overflow. Two real nodes in
// this process over libp2p on loopback; A keeps 99.9% of its volume free, so it is
// below its watermark on any disk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

const json = { 'content-type': 'application/json' }

describe('ingest below the disk watermark', () => {
  let a: TempNode
  let b: TempNode

  const node = (meshExtra: string) => `
workers: 1
mesh: { listen: /ip4/127.0.0.1/tcp/0, gossipInterval: 200ms${meshExtra} }
pipelines:
  p: {}
`

  beforeAll(async () => {
    a = await startTempNode(node(''), { id: 'node-a', queue: 'minFreeDisk: 99.9%' })
    const aAddr = a.node.mesh!.addresses()[0]!
    b = await startTempNode(node(`, bootstrap: ['${aAddr}']`), { id: 'node-b' })
    await waitFor(
      () => a.node.stats().peers.some((p) => p.node === 'node-b' && p.connected) && b.node.stats().peers.some((p) => p.node === 'node-a'),
      { what: 'the two nodes to see each other' },
    )
  }, 60_000)

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
  })

  it('hands new events to a peer with room and answers 202; the peer is told not to send overflow here', async () => {
    expect(a.node.stats().disk).toMatchObject({ belowWatermark: true, storeFaulted: false })
    const res = await a.node.app.request('/events', {
      method: 'POST',
      body: JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ i }))),
      headers: json,
    })
    expect(res.status).toBe(202)
    const { ids } = (await res.json()) as { ids: string[] }
    expect(ids).toHaveLength(10)
    expect(a.node.stats().queue.unprocessed + a.node.stats().queue.inflight).toBe(0)
    expect(a.node.stats().counters.handedOff).toBe(10)
    await waitFor(() => b.node.stats().counters.processed === 10, { what: 'the peer to process the 10 events' })
    // A's announcement: not accepting, so B never picks it for overflow.
    await waitFor(() => b.node.stats().peers.find((p) => p.node === 'node-a')?.load?.accepting === false, {
      what: 'B to hear that A takes no overflow',
    })
  })

  it('answers 429 with Retry-After when no peer takes them either', async () => {
    await b.close()
    await waitFor(() => !a.node.stats().peers.some((p) => p.node === 'node-b' && p.connected), { what: 'A to lose B' })
    const res = await a.node.app.request('/events', { method: 'POST', body: '{"x":1}', headers: json })
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
    const body = (await res.json()) as { code: string; error: string; peer?: { node: string } }
    expect(body.code).toBe('BINGE_QUEUE_FULL')
    expect(body.error).toMatch(/under queue\.minFreeDisk .*no peer can take more either/)
    // The peer it last heard of, while its gossip is fresh (the existing 429 shape).
    if (body.peer) expect(body.peer.node).toBe('node-b')
  })
})
