// Who takes which events: a node without pipelines relays everything it accepts to a
// peer that can process it, and overflow goes only to peers that run every pipeline
// of the sender (a handed-off event is processed by the receiver's own pipelines).
// Real nodes in this process, real libp2p over TCP on loopback.
import { afterEach, describe, expect, it } from 'vitest'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

const json = { 'content-type': 'application/json' }
const mesh = (bootstrap?: string) =>
  `mesh: { listen: /ip4/127.0.0.1/tcp/0, gossipInterval: 200ms${bootstrap ? `, bootstrap: ['${bootstrap}']` : ''} }`
const lines = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : []

let nodes: TempNode[] = []
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()))
  nodes = []
})

describe('relays and overflow eligibility', () => {
  it('a node without pipelines hands every event it accepts to a peer that processes it', async () => {
    const worker = await startTempNode(`${mesh()}\npipelines:\n  all: { outputs: [ { file: { path: $DIR/all.jsonl } } ] }\n`, {
      id: 'worker',
    })
    nodes.push(worker)
    const relay = await startTempNode(`${mesh(worker.node.mesh!.addresses()[0])}\n`, { id: 'relay' })
    nodes.push(relay)
    await waitFor(() => relay.node.stats().peers.some((p) => p.node === 'worker' && p.connected), { what: 'the relay to see the worker' })
    const res = await relay.node.app.request('/events', {
      method: 'POST',
      body: JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ i }))),
      headers: json,
    })
    expect(res.status).toBe(202)
    const { ids } = await res.json()
    await waitFor(() => lines(join(worker.dir, 'all.jsonl')).length === 20, { what: 'all 20 events in the worker output' })
    const out = lines(join(worker.dir, 'all.jsonl'))
    expect(out.map((e) => e.id).sort()).toEqual([...ids].sort())
    expect(out.every((e) => e.origin === 'relay' && e.node === 'worker')).toBe(true)
    await waitFor(() => relay.node.queue.depth().handingOff === 0 && relay.node.queue.depth().unprocessed === 0, {
      what: 'the relay to be empty',
    })
    expect(relay.node.stats().counters).toMatchObject({ handedOff: 20, processed: 0 })
  })

  it('does not overflow to a peer that lacks one of its pipelines', async () => {
    const other = await startTempNode(`${mesh()}\npipelines:\n  other: { outputs: [ { file: { path: $DIR/other.jsonl } } ] }\n`, {
      id: 'other',
    })
    nodes.push(other)
    const same = await startTempNode(
      `${mesh(other.node.mesh!.addresses()[0])}\npipelines:\n  mine: { outputs: [ { file: { path: $DIR/mine.jsonl } } ] }\n  other: { outputs: [ { file: { path: $DIR/other.jsonl } } ] }\n`,
      { id: 'same' },
    )
    nodes.push(same)
    // Busy: its one worker's output never answers, and its marks are low.
    const busy = await startTempNode(
      `queue: { highWaterMark: 5, lowWaterMark: 0 }\nworkers: 1\n${mesh(other.node.mesh!.addresses()[0])}\npipelines:\n  mine: { outputs: [ { http: { url: 'http://127.0.0.1:9/never', timeout: 60s } } ], onFail: { retry: { attempts: 1000, backoff: 1s, maxBackoff: 1s } } }\n`,
      { id: 'busy' },
    )
    nodes.push(busy)
    await waitFor(() => busy.node.stats().peers.filter((p) => p.connected).length === 2, { what: 'busy to see both peers' })
    const res = await busy.node.app.request('/events', {
      method: 'POST',
      body: JSON.stringify(Array.from({ length: 60 }, (_, i) => ({ i }))),
      headers: json,
    })
    expect(res.status).toBe(202)
    await waitFor(() => lines(join(same.dir, 'mine.jsonl')).length > 0, { what: 'overflow processed by the peer that runs "mine"' })
    expect(other.node.stats().counters.handedIn).toBe(0)
    expect(same.node.stats().counters.handedIn).toBeGreaterThan(0)
  })
})
