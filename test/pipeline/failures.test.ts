// Failure paths of outputs on a real node (durable queue on a temp dir), against a
// webhook the test starts: one that fails N times then recovers (retried, delivered
// once); one that always fails (dead-lettered, listed, replayed once it recovers, then
// delivered exactly once); a permanent 4xx among good events; a timeout; a forward
// with no mesh. And the per-step figures those failures leave in /metrics.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

interface Envelope {
  id: string
  data: Record<string, unknown>
}

type Behaviour = (attempt: number, envelopes: Envelope[]) => { status: number; delayMs?: number }

interface Webhook {
  url: string
  /** POSTs received, whatever the answer. */
  posts: number
  /** Envelopes answered 2xx, by event id: what was delivered. */
  delivered: Map<string, number>
  behave: Behaviour
  close(): Promise<void>
}

async function startWebhook(behave: Behaviour): Promise<Webhook> {
  const hook: Webhook = {
    url: '',
    posts: 0,
    delivered: new Map(),
    behave,
    close: async () => {},
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const envelopes = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Envelope[]
      const { status, delayMs = 0 } = hook.behave(hook.posts++, envelopes)
      setTimeout(() => {
        if (res.destroyed) return // the sender gave up (timeout): not delivered
        if (status < 300) for (const e of envelopes) hook.delivered.set(e.id, (hook.delivered.get(e.id) ?? 0) + 1)
        res.writeHead(status).end(status < 300 ? '' : `failing with ${status}`)
      }, delayMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  hook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  hook.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return hook
}

const json = { 'content-type': 'application/json' }
let node: TempNode | undefined
let hook: Webhook | undefined
afterEach(async () => {
  await node?.close()
  await hook?.close()
  node = undefined
  hook = undefined
})

async function post(t: TempNode, body: unknown): Promise<string[]> {
  const res = await t.node.app.request('/events', { method: 'POST', body: JSON.stringify(body), headers: json })
  expect(res.status).toBe(202)
  return ((await res.json()) as { ids: string[] }).ids
}

const drained = (t: TempNode) => () => {
  const q = t.node.queue.depth()
  return q.unprocessed === 0 && q.inflight === 0
}

const pipeline = (url: string, extra = '') => `
pipelines:
  hook:
    outputs: [ { http: { url: '${url}', timeout: 300ms, batch: { period: 5ms } } } ]
    onFail:
      retry: { attempts: 4, backoff: 10ms, maxBackoff: 40ms }
      then: deadletter
${extra}`

describe('output failures', () => {
  it('retries a webhook that fails 3 times, then delivers the event once', async () => {
    hook = await startWebhook((n) => ({ status: n < 3 ? 503 : 200 }))
    node = await startTempNode(pipeline(hook.url))
    const [id] = await post(node, { order: 1 })
    await waitFor(drained(node), { what: 'the queue to drain' })
    expect(hook.posts).toBe(4)
    expect(Object.fromEntries(hook.delivered)).toEqual({ [id!]: 1 })
    expect(node.node.stats().counters).toMatchObject({ processed: 1, failed: 0, deadlettered: 0 })
    expect(node.node.queue.depth().deadletter).toBe(0)
  })

  it('dead-letters what an always-failing webhook refuses; after it recovers, a replay delivers it exactly once', async () => {
    let up = false
    hook = await startWebhook(() => ({ status: up ? 200 : 500 }))
    node = await startTempNode(pipeline(hook.url))
    const [id] = await post(node, { order: 7 })
    await waitFor(() => node!.node.queue.depth().deadletter === 1, { what: 'the event to be dead-lettered' })
    expect(hook.posts).toBe(4)
    expect(hook.delivered.size).toBe(0)

    const listed = (await (await node.node.app.request('/deadletter')).json()) as { count: number; events: Array<Record<string, unknown>> }
    expect(listed.count).toBe(1)
    expect(listed.events[0]).toMatchObject({ pipeline: 'hook', attempts: 4, event: { id, data: { order: 7 } } })
    expect(listed.events[0]!.error).toBe(`POST ${hook.url} answered 500: failing with 500`)

    up = true
    const replay = await node.node.app.request('/deadletter/replay', { method: 'POST', body: '{}', headers: json })
    expect(await replay.json()).toEqual({ count: 1, ids: [id] })
    await waitFor(() => hook!.delivered.get(id!) === 1, { what: 'the replayed event at the webhook' })
    await waitFor(drained(node), { what: 'the queue to drain' })
    // Nothing comes later: no second copy, nothing left dead-lettered.
    await new Promise((r) => setTimeout(r, 200))
    expect(Object.fromEntries(hook.delivered)).toEqual({ [id!]: 1 })
    expect(node.node.queue.depth().deadletter).toBe(0)
    expect(node.node.stats().counters).toMatchObject({ processed: 1, failed: 1, deadlettered: 1 })
  })

  it('a permanent 4xx fails only the event the endpoint refuses, without retries; the rest of its batch is delivered', async () => {
    hook = await startWebhook((_n, envelopes) => ({ status: envelopes.some((e) => e.data.poison === true) ? 422 : 200 }))
    node = await startTempNode(pipeline(hook.url, 'workers: 1'))
    const ids = await post(node, [{ n: 1 }, { n: 2, poison: true }, { n: 3 }])
    await waitFor(drained(node), { what: 'the queue to drain' })
    expect([...hook.delivered.keys()].sort()).toEqual([ids[0], ids[2]].sort())
    const listed = (await (await node.node.app.request('/deadletter')).json()) as {
      events: Array<{ attempts: number; error: string; event: { id: string } }>
    }
    expect(listed.events.map((e) => [e.event.id, e.attempts])).toEqual([[ids[1], 1]])
    expect(listed.events[0]!.error).toMatch(/answered 422/)
  })

  it('retries a POST that timed out, and delivers it', async () => {
    hook = await startWebhook((n) => ({ status: 200, delayMs: n === 0 ? 1_000 : 0 }))
    node = await startTempNode(pipeline(hook.url))
    const [id] = await post(node, { slow: true })
    await waitFor(drained(node), { what: 'the queue to drain' })
    expect(hook.posts).toBe(2)
    expect(hook.delivered.get(id!)).toBe(1)
    expect(node.node.stats().counters).toMatchObject({ processed: 1, failed: 0 })
  })

  it('a forward on a node without a mesh goes straight to onFail, saying why', async () => {
    node = await startTempNode(`
pipelines:
  relay:
    outputs: [ { forward: { pipeline: archive } } ]
    onFail: { retry: { attempts: 5, backoff: 1s }, then: deadletter }
`)
    const [id] = await post(node, { n: 1 })
    await waitFor(() => node!.node.queue.depth().deadletter === 1, { what: 'the event to be dead-lettered' })
    const listed = (await (await node.node.app.request('/deadletter')).json()) as {
      events: Array<{ attempts: number; error: string; event: { id: string } }>
    }
    expect(listed.events[0]).toMatchObject({ attempts: 1, event: { id } })
    expect(listed.events[0]!.error).toBe('forward to pipeline "archive" needs a mesh: this node runs alone (no mesh section in its config)')
  })
})

describe('per-step and per-pipeline figures', () => {
  it('counts what each step processed, filtered and failed, what onFail did with the failures, and times them', async () => {
    node = await startTempNode(`
workers: 1
pipelines:
  calc:
    steps:
      - filter: 'keep'
      - map: '{"inverse": $number(1 / n)}'
      - filter: 'inverse < 1'
    outputs: [ { file: { path: $DIR/calc.jsonl } } ]
    onFail: { then: drop }
`)
    // n = 2: through; n = 1: filtered by step 2 (inverse 1); keep false: filtered by
    // step 0; n = "x": step 1 fails (a string in a division) and is dropped.
    await post(node, [
      { keep: true, n: 2 },
      { keep: true, n: 1 },
      { keep: false, n: 3 },
      { keep: true, n: 'x' },
    ])
    await waitFor(drained(node), { what: 'the queue to drain' })
    const text = (await node.node.metrics()).body
    const value = (metric: string, labels: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && labels.split(',').every((p) => l.includes(p)))
      return line === undefined ? undefined : Number(line.split(' ').at(-1))
    }
    const step = (index: number, kind: string, outcome: string) =>
      value('binge_step_events_total', `pipeline="calc",step="${index}",kind="${kind}",outcome="${outcome}"`)
    expect(step(0, 'filter', 'processed')).toBe(3)
    expect(step(0, 'filter', 'filtered')).toBe(1)
    expect(step(1, 'map', 'processed')).toBe(2)
    expect(step(1, 'map', 'failed')).toBe(1)
    expect(step(2, 'filter', 'processed')).toBe(1)
    expect(step(2, 'filter', 'filtered')).toBe(1)
    expect(value('binge_step_failures_total', 'pipeline="calc",step="1",kind="map",action="drop"')).toBe(1)
    expect(value('binge_step_duration_seconds_count', 'pipeline="calc",step="0",kind="filter"')).toBe(4)
    expect(value('binge_pipeline_events_total', 'pipeline="calc",outcome="processed"')).toBe(1)
    expect(value('binge_pipeline_events_total', 'pipeline="calc",outcome="filtered"')).toBe(2)
    expect(value('binge_pipeline_events_total', 'pipeline="calc",outcome="failed"')).toBe(1)
    expect(value('binge_pipeline_failures_total', 'pipeline="calc",action="drop"')).toBe(1)
    expect(value('binge_pipeline_duration_seconds_count', 'pipeline="calc"')).toBe(4)
  })
})
