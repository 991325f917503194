// The handoff door as an attacker on the same network meets it: a real libp2p host,
// in this process, opens /binge/handoff/1.0.0 and /binge/trace/1.0.0 on a real node and
// sends hostile frames. A peer with no announcement is refused; a member cannot speak
// for another node; events meet the checks HTTP makes (forbidden keys, depth, numbers,
// size); a route must name a pipeline the node runs; forged hops and receivedAt are
// corrected. Nothing of a refused batch is stored.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadTopic, type Announcement } from '../../src/mesh/announcement.js'
import { handoffProtocol } from '../../src/mesh/handoff-protocol.js'
import { traceProtocol } from '../../src/mesh/mesh.js'
import { createPeerHost, type PeerHost } from '../../src/mesh/peer-host.js'
import type { EventRecord, QueuedEvent } from '../../src/queue/types.js'
import { startWebhook, type Webhook } from '../support/mesh.js'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

/** One frame as raw JSON text (so it can hold what JSON.stringify cannot: `1e400`), and the answer. */
async function rawRequest(host: PeerHost, peer: string, protocol: string, text: string): Promise<Record<string, unknown>> {
  const signal = AbortSignal.timeout(10_000)
  const stream = await host.dialProtocol(peerIdFromString(peer), protocol, { signal })
  const lp = lpStream(stream)
  await lp.write(Buffer.from(text, 'utf8'), { signal })
  const answer = JSON.parse(new TextDecoder().decode((await lp.read({ signal })).subarray())) as Record<string, unknown>
  await stream.close({ signal }).catch(() => {})
  return answer
}

const event = (id: string, extra: Partial<EventRecord> = {}): EventRecord => ({
  id,
  origin: 'evil',
  receivedAt: Date.now(),
  hops: 0,
  data: { cid: id },
  ...extra,
})
const batch = (events: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ v: 1, handoffId: randomUUID(), kind: 'overflow', from: 'evil', events, ...extra })
/** A v2 frame (src/mesh/handoff-frame.ts): the envelope line, then each event's data as the text given. */
const batchV2 = (events: Array<[id: string, dataText: string]>, extra: Record<string, unknown> = {}) => {
  const heads = events.map(([id]) => {
    const { data: _data, ...head } = event(id)
    return head
  })
  const texts = events.map(([, text]) => text)
  const envelope = {
    v: 2,
    handoffId: randomUUID(),
    kind: 'overflow',
    from: 'evil',
    events: heads,
    dataLengths: texts.map((t) => t.length),
    ...extra,
  }
  return `${JSON.stringify(envelope)}\n${texts.join('')}`
}

describe('the handoff door against a hostile peer', () => {
  let t: TempNode
  let hook: Webhook
  let evil: PeerHost
  let target: string

  beforeAll(async () => {
    // One worker, held by a webhook that does not answer: events handed in stay in the
    // queue, where the test reads what was stored.
    hook = await startWebhook({ held: true })
    t = await startTempNode(
      `
workers: 1
pipelines:
  p:
    outputs: [ { http: { url: '${hook.url}', timeout: 60s } } ]
mesh: { listen: /ip4/127.0.0.1/tcp/0, gossipInterval: 200ms }
`,
      { http: 'maxBodyBytes: 4KiB' },
    )
    const res = await fetch(`${t.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"cid":"blocker"}',
    })
    expect(res.status).toBe(202)
    await waitFor(() => t.node.queue.depth().inflight === 1, { what: 'the one worker to hold the blocker' })
    target = t.node.mesh!.peerId()!
    evil = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), listen: '/ip4/127.0.0.1/tcp/0', psk: '', allowPeers: [] })
    await evil.start()
    await evil.dial(multiaddr(t.node.mesh!.addresses().find((a) => a.includes('/ip4/127.0.0.1/'))!))
  })
  afterAll(async () => {
    hook.release()
    await evil?.stop()
    await t?.close()
    await hook?.close()
  })

  const send = (text: string) => rawRequest(evil, target, handoffProtocol, text)
  const accepted: string[] = []

  it('refuses a batch and a trace lookup from a peer that has not announced itself', async () => {
    expect(await send(batch([event('anon-1')]))).toEqual({ status: 'refused', reason: expect.stringMatching(/not a mesh member/) })
    expect(await rawRequest(evil, target, traceProtocol, JSON.stringify({ id: 'blocker' }))).toEqual({
      refused: 'the trace protocol answers mesh members only',
    })
  })

  /** `host` announces itself, signed, as node `node`, until the node under test lists it. */
  async function announce(host: PeerHost, node: string): Promise<void> {
    const pubsub = host.services.pubsub
    pubsub.subscribe(loadTopic)
    await waitFor(() => pubsub.getSubscribers(loadTopic).some((p) => p.toString() === target), {
      what: 'the node to be subscribed to the load topic',
    })
    const announcement: Announcement = {
      v: 1,
      node,
      peerId: host.peerId.toString(),
      http: '127.0.0.1:1',
      addrs: [],
      depth: 0,
      inflight: 0,
      highWaterMark: 10,
      lowWaterMark: 0,
      maxEvents: 10,
      accepting: false,
      drainRate: 0,
      pipelines: [],
      sentAt: Date.now(),
    }
    await waitFor(
      async () => {
        await pubsub.publish(loadTopic, new TextEncoder().encode(JSON.stringify({ ...announcement, sentAt: Date.now() })))
        return t.node.mesh!.table.get(host.peerId.toString())
      },
      { what: `the node to list the peer announcing ${node}` },
    )
  }

  it('once it announces itself (as "evil"), refuses what HTTP would refuse and what it cannot claim', async () => {
    await announce(evil, 'evil')

    const deep = `${'{"a":'.repeat(64)}1${'}'.repeat(64)}`
    const hostile: Array<[string, string, RegExp]> = [
      [
        "a batch from another node's name",
        batch([event('forged-from')], { from: 'test-node' }),
        /says it is from "test-node", but the sender's peer id announced "evil"/,
      ],
      [
        'a constructor key',
        batch([event('ctor', { data: { constructor: { x: 1 } } })]),
        /event 0 \(ctor\): data has the key "constructor"/,
      ],
      [
        'a __proto__ key, raw',
        batch([event('proto-ok'), { ...event('proto'), data: 'DATA' }]).replace('"DATA"', '{"x":{"__proto__":{"polluted":true}}}'),
        /event 1 \(proto\): data\.x has the key "__proto__"/,
      ],
      [
        'a __proto__ key at the top of data (a schema copy would drop it)',
        batch([{ ...event('proto-top'), data: 'DATA' }]).replace('"DATA"', '{"__proto__":{"polluted":true},"case":"top"}'),
        /event 0 \(proto-top\): data has the key "__proto__"/,
      ],
      [
        'nesting 65 levels (data at depth 1)',
        batch([{ ...event('deep'), data: 'DATA' }]).replace('"DATA"', `{"x":${deep}}`),
        /nests deeper than 64 levels/,
      ],
      [
        'a number a double cannot hold',
        batch([{ ...event('inf'), data: 'DATA' }]).replace('"DATA"', '{"t":1e400}'),
        /data\.t is a number too large for a double/,
      ],
      [
        'an event larger than the HTTP door takes',
        batch([event('big', { data: { pad: 'x'.repeat(5000) } })]),
        /more than the 4096 one event may be here/,
      ],
      [
        'a route that names no pipeline (skipping the high-water mark)',
        batch([event('route-none')], { kind: 'route' }),
        /names no pipeline/,
      ],
      [
        'a route for a pipeline the node does not run',
        batch([event('route-other', { pipeline: 'elsewhere' })], { kind: 'route' }),
        /does not run the pipeline "elsewhere"/,
      ],
    ]
    for (const [what, text, reason] of hostile) {
      expect(await send(text), what).toEqual({ status: 'refused', reason: expect.stringMatching(reason) })
    }
    expect(t.node.queue.depth().unprocessed).toBe(0)
  })

  it('meets a v2 frame (data as texts of their own) with the same checks, and refuses one whose texts do not add up', async () => {
    const deep = `${'{"a":'.repeat(64)}1${'}'.repeat(64)}`
    const hostile: Array<[string, string, RegExp]> = [
      [
        'a __proto__ key',
        batchV2([
          ['v2-ok', '{"cid":1}'],
          ['v2-proto', '{"x":{"__proto__":{"polluted":true}}}'],
        ]),
        /event 1 \(v2-proto\): data\.x has the key "__proto__"/,
      ],
      [
        'a __proto__ key at the top',
        batchV2([['v2-proto-top', '{"__proto__":{"polluted":true}}']]),
        /event 0 \(v2-proto-top\): data has the key "__proto__"/,
      ],
      ['nesting 65 levels', batchV2([['v2-deep', `{"x":${deep}}`]]), /nests deeper than 64 levels/],
      ['a number a double cannot hold', batchV2([['v2-inf', '{"t":1e400}']]), /data\.t is a number too large for a double/],
      [
        'an event larger than the HTTP door takes',
        batchV2([['v2-big', `{"pad":"${'x'.repeat(5000)}"}`]]),
        /5010 bytes of JSON, more than the 4096 one event may be here/,
      ],
      ['data that is not an object', batchV2([['v2-array', '[1]']]), /data must be a JSON object/],
      ['data that is not JSON', batchV2([['v2-broken', '{"a":']]), /invalid handoff request: event 0's data is not JSON/],
      [
        'more data than its events',
        batchV2([['v2-more', '{}x']], { dataLengths: [2] }),
        /invalid handoff request: the frame holds more data than its events/,
      ],
      [
        'a length past the frame',
        batchV2([['v2-past', '{}']], { dataLengths: [3] }),
        /invalid handoff request: event 0's data length is not within the frame/,
      ],
      [
        'a length missing',
        batchV2([['v2-missing', '{}']], { dataLengths: [] }),
        /invalid handoff request: a v2 frame lists its events and one data length for each/,
      ],
      [
        'v2 without its data texts',
        JSON.stringify({ v: 2, handoffId: randomUUID(), kind: 'overflow', from: 'evil', events: [event('v2-none')] }),
        /a v2 body comes with its data texts/,
      ],
    ]
    for (const [what, text, reason] of hostile) {
      expect(await send(text), what).toEqual({ status: 'refused', reason: expect.stringMatching(reason) })
    }
    expect(t.node.queue.depth().unprocessed).toBe(0)
    expect(
      await send(
        batchV2([
          ['v2-a', '{"cid":"a","n":[1,2]}'],
          ['v2-b', '{"cid":"é"}'],
        ]),
      ),
    ).toMatchObject({ status: 'accepted', accepted: 2 })
    const stored: QueuedEvent[] = await t.node.queue.dequeue(100)
    expect(stored.map((e) => [e.id, e.data, e.hops])).toEqual([
      ['v2-a', { cid: 'a', n: [1, 2] }, 1],
      ['v2-b', { cid: 'é' }, 1],
    ])
    await t.node.queue.nack(stored)
    accepted.push('v2-a', 'v2-b')
  })

  it('refuses a batch and a trace lookup from a second peer that announces the name "evil" holds', async () => {
    const thief = await createPeerHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: '/ip4/127.0.0.1/tcp/0',
      psk: '',
      allowPeers: [],
    })
    try {
      await thief.start()
      await thief.dial(multiaddr(t.node.mesh!.addresses().find((a) => a.includes('/ip4/127.0.0.1/'))!))
      await announce(thief, 'evil')
      expect(t.node.mesh!.table.get(thief.peerId.toString())?.conflictWith).toBe(evil.peerId.toString())
      const before = t.node.queue.depth().unprocessed
      // Under evil's name it would hand in events as evil (and have them dropped as evil's resends).
      expect(await rawRequest(thief, target, handoffProtocol, batch([event('stolen-name')]))).toEqual({
        status: 'refused',
        reason: expect.stringMatching(/not a mesh member/),
      })
      expect(await rawRequest(thief, target, traceProtocol, JSON.stringify({ id: 'blocker' }))).toEqual({
        refused: 'the trace protocol answers mesh members only',
      })
      expect(t.node.queue.depth().unprocessed).toBe(before)
    } finally {
      await thief.stop()
    }
  })

  it("corrects forged hops and receivedAt, takes a route for a pipeline it runs, and answers a member's trace", async () => {
    const now = Date.now()
    const batchOf = [
      // Claims a hop count of 0 for an event whose origin is another node, and a time a day ahead.
      event('forged-origin', { origin: 'victim', hops: 0, receivedAt: now + 86_400_000 }),
      // Its own event, first hop: believed, and an old time cannot be checked.
      event('own', { receivedAt: 0 }),
    ]
    expect(await send(batch(batchOf))).toMatchObject({ status: 'accepted', accepted: 2 })
    expect(await send(batch([event('routed', { pipeline: 'p' })], { kind: 'route' }))).toMatchObject({ status: 'accepted', accepted: 1 })
    accepted.push('forged-origin', 'own', 'routed')
    const answer = await rawRequest(evil, target, traceProtocol, JSON.stringify({ id: 'own' }))
    expect((answer.steps as Array<{ state: string }>).map((s) => s.state)).toContain('handedIn')

    const stored: QueuedEvent[] = await t.node.queue.dequeue(100)
    const byId = new Map(stored.map((e) => [e.id, e]))
    expect([...byId.keys()].sort()).toEqual([...accepted].sort())
    expect(byId.get('forged-origin')).toMatchObject({ origin: 'victim', hops: 2 })
    expect(byId.get('forged-origin')!.receivedAt).toBeLessThanOrEqual(Date.now())
    expect(byId.get('forged-origin')!.receivedAt).toBeGreaterThanOrEqual(now)
    expect(byId.get('own')).toMatchObject({ origin: 'evil', hops: 1, receivedAt: 0 })
    expect(byId.get('routed')).toMatchObject({ pipeline: 'p', hops: 1 })
    await t.node.queue.nack(stored)
    // The node still serves HTTP.
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  })

  it("refuses an overflow batch that reuses a client's Idempotency-Key for another event; the same event is a duplicate", async () => {
    const res = await fetch(`${t.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'order-1-0' },
      body: '{"cid":"client"}',
    })
    expect(res.status).toBe(202)
    const before = t.node.queue.depth().unprocessed
    // A sender marks an event whose id a client chose as keyed (EventRecord.keyed).
    expect(await send(batch([event('order-1-0', { keyed: true, data: { cid: 'other' } })]))).toEqual({
      status: 'refused',
      reason: expect.stringMatching(/"order-1-0" was accepted within the dedupe window for a different event/),
    })
    expect(await send(batch([event('order-1-0', { keyed: true, data: { cid: 'client' } })]))).toMatchObject({
      status: 'accepted',
      accepted: 0,
      duplicates: 1,
    })
    // Only a keyed event is compared: one without the flag claims an id binge made, which
    // nobody can reuse, so it is a duplicate (a peer that leaves the flag off loses only
    // its own copy).
    expect(await send(batch([event('order-1-0', { data: { cid: 'third' } })]))).toMatchObject({ status: 'accepted', accepted: 0 })
    expect(await send(batch([event('order-1-0', { keyed: false as unknown as true, data: { cid: 'client' } })]))).toMatchObject({
      status: 'refused',
      reason: expect.stringMatching(/keyed must be true when present/),
    })
    expect(t.node.queue.depth().unprocessed).toBe(before)
  })
})
