// Admission with a mesh (docs/design.md §3 and §5): a node at its hard cap answers 429
// only when no peer can take the events either; until then it hands the request's
// events to a peer with room and answers 202 once the peer made them durable. The 429
// names the least-loaded peer's HTTP address. Two real nodes in this process, real
// libp2p over TCP on loopback, outputs stalled by a webhook that never answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

const json = { 'content-type': 'application/json' }

describe('admission at the hard cap', () => {
  let stalled: Server
  const held: ServerResponse[] = []
  let a: TempNode
  let b: TempNode

  // The high-water mark equals the cap, so the background offloader never acts and
  // only admission moves events between the nodes.
  const node = (meshExtra: string, hook: string) => `
queue: { highWaterMark: 50, lowWaterMark: 20, maxEvents: 50 }
workers: 1
mesh: { listen: /ip4/127.0.0.1/tcp/0, gossipInterval: 200ms${meshExtra} }
pipelines:
  p:
    outputs: [ { http: { url: '${hook}', timeout: 60s } } ]
`

  beforeAll(async () => {
    stalled = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume()
      held.push(res)
    })
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve))
    const hook = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}/hook`
    a = await startTempNode(node('', hook), { id: 'node-a' })
    const aAddr = a.node.mesh!.addresses()[0]!
    b = await startTempNode(node(`, bootstrap: ['${aAddr}']`, hook), { id: 'node-b' })
    await waitFor(
      () => a.node.stats().peers.some((p) => p.node === 'node-b' && p.connected) && b.node.stats().peers.some((p) => p.node === 'node-a'),
      { what: 'the two nodes to see each other' },
    )
  }, 60_000)

  afterAll(async () => {
    for (const res of held) res.destroy()
    await Promise.all([a?.close(), b?.close()])
    await new Promise((resolve) => stalled.close(resolve))
  })

  const post = (t: TempNode, count: number) =>
    t.node.app.request('/events', { method: 'POST', body: JSON.stringify(Array.from({ length: count }, (_, i) => ({ i }))), headers: json })

  it('hands a request over the cap to a peer with room, then answers 429 naming a peer', async () => {
    // Fill A to its cap: its one worker holds a batch at the stalled webhook.
    let accepted = 0
    for (;;) {
      const res = await post(a, 5)
      await res.body?.cancel()
      if (res.status !== 202) break
      accepted += 5
      if (accepted > 200) throw new Error('A never reached its cap')
      if (a.node.queue.depth().unprocessed + a.node.queue.depth().inflight >= 50) break
    }
    expect(a.node.stats().counters.handedOff).toBe(0)

    // Over A's cap, B still has room: A hands the events over and answers 202.
    const over = await post(a, 5)
    expect(over.status).toBe(202)
    const { ids } = await over.json()
    expect(ids).toHaveLength(5)
    await waitFor(() => b.node.stats().counters.handedIn >= 5, { what: 'B to hold the handed-in events' })
    expect(a.node.stats().counters.handedOff).toBe(5)
    expect(a.node.stats().counters.received).toBe(accepted + 5)

    // A client retrying a request A handed over (same Idempotency-Key) gets a duplicate,
    // not a second copy: A remembers the ids it made durable on B.
    const keyed = () =>
      a.node.app.request('/events', {
        method: 'POST',
        body: JSON.stringify({ retry: 1 }),
        headers: { ...json, 'idempotency-key': 'cap-retry' },
      })
    const first = await keyed()
    expect(first.status).toBe(202)
    expect(await first.json()).toEqual({ ids: ['cap-retry'] })
    const retried = await keyed()
    expect(retried.status).toBe(202)
    expect(await retried.json()).toMatchObject({ ids: ['cap-retry'], duplicate: true })
    expect(a.node.stats().counters.handedOff).toBe(6)
    expect(a.node.stats().counters.duplicates).toBe(1)
    // B got the event keyed (a client chose its id), so it kept its fingerprint: the key
    // reused at B for another event is refused there, the same event is a duplicate.
    const atB = (body: object) =>
      b.node.app.request('/events', { method: 'POST', body: JSON.stringify(body), headers: { ...json, 'idempotency-key': 'cap-retry' } })
    const reused = await atB({ retry: 2 })
    expect(reused.status).toBe(422)
    expect(await reused.json()).toMatchObject({ code: 'BINGE_IDEMPOTENCY_CONFLICT' })
    expect(await (await atB({ retry: 1 })).json()).toMatchObject({ ids: ['cap-retry'], duplicate: true })

    // Keep going until B is full too: then, and only then, a 429 naming the peer.
    let refused: Response | undefined
    for (let i = 0; i < 40 && !refused; i++) {
      const res = await post(a, 5)
      if (res.status === 429) refused = res
      else {
        expect(res.status).toBe(202)
        await res.body?.cancel()
      }
    }
    expect(refused, 'a 429 once no peer can take more').toBeDefined()
    expect(refused!.headers.get('retry-after')).toMatch(/^\d+$/)
    const body = await refused!.json()
    expect(body.code).toBe('BINGE_QUEUE_FULL')
    expect(body.peer).toEqual({ node: 'node-b', http: b.url })
    // Nothing accepted was lost: every event A answered 202 for is on A or on B.
    const held = (t: TempNode) => {
      const d = t.node.queue.depth()
      return d.unprocessed + d.inflight + d.handingOff
    }
    const where = { a: a.node.stats(), b: b.node.stats() }
    expect(held(a) + held(b), JSON.stringify(where)).toBe(a.node.stats().counters.received)
  })
})
