// The HTTP contract (docs/design.md §3) against a real node: routes in memory through
// app.request(), bad input over a real socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Agent, request as httpRequest } from 'node:http'
import { ingestTarget } from '../../src/http/ingest-route.js'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'

const json = { 'content-type': 'application/json' }

describe('routes in memory', () => {
  let t: TempNode
  beforeAll(async () => {
    t = await startTempNode(`
pipelines:
  everything:
    outputs: [ { file: { path: $DIR/out.jsonl } } ]
  only-b:
    when: 'kind = "b"'
    outputs: [ { file: { path: $DIR/b.jsonl } } ]
`)
  })
  afterAll(() => t.close())

  const post = (path: string, body: string, headers: Record<string, string> = json) =>
    t.node.app.request(path, { method: 'POST', body, headers })

  it('accepts one object and answers its id', async () => {
    const res = await post('/events', '{"kind":"a"}')
    expect(res.status).toBe(202)
    const body = await res.json()
    expect(body.ids).toHaveLength(1)
    expect(body.ids[0]).toMatch(/^[0-9a-f-]{36}$/)
    expect(body.duplicate).toBeUndefined()
  })

  it('uses Idempotency-Key as the id and answers a repeat as a duplicate, queued once', async () => {
    const before = t.node.stats().counters.received
    const first = await (await post('/events', '{"kind":"a"}', { ...json, 'idempotency-key': 'order-1' })).json()
    const again = await post('/events', '{"kind":"a"}', { ...json, 'idempotency-key': 'order-1' })
    expect(first).toEqual({ ids: ['order-1'] })
    expect(again.status).toBe(202)
    expect(await again.json()).toEqual({ ids: ['order-1'], duplicate: true, duplicates: ['order-1'] })
    expect(t.node.stats().counters.received).toBe(before + 1)
  })

  it('numbers keyed batch ids KEY-0, KEY-1 for arrays and NDJSON', async () => {
    const arr = await (await post('/events', '[{"n":0},{"n":1}]', { ...json, 'idempotency-key': 'batch-a' })).json()
    expect(arr.ids).toEqual(['batch-a-0', 'batch-a-1'])
    const nd = await (await post('/events', '{"n":0}\n', { 'content-type': 'application/x-ndjson', 'idempotency-key': 'batch-b' })).json()
    expect(nd.ids).toEqual(['batch-b-0'])
  })

  it('refuses a whole array when one item is bad', async () => {
    const before = t.node.stats().counters.received
    const res = await post('/events', '[{"ok":1},"nope"]')
    expect(res.status).toBe(400)
    expect((await res.json()).error).toMatch(/item \[1\] is string/)
    expect(t.node.stats().counters.received).toBe(before)
  })

  it('routes POST /events/NAME to that pipeline only, and 404s an unknown one', async () => {
    const res = await post('/events/only-b', '{"kind":"not-b","mark":"routed"}')
    expect(res.status).toBe(202)
    const [id] = (await res.json()).ids
    await waitFor(async () => (await t.node.trace(id))?.some((s) => s.state === 'acked'), { what: 'the routed event to be acked' })
    const trace = (await t.node.trace(id))!
    expect(trace.filter((s) => s.state === 'processed').map((s) => s.pipeline)).toEqual(['only-b'])
    const missing = await post('/events/nope', '{}')
    expect(missing.status).toBe(404)
    expect((await missing.json()).error).toMatch(/no known node runs the pipeline "nope"/)
  })

  it('traces an event through its states', async () => {
    const [id] = (await (await post('/events', '{"kind":"b"}')).json()).ids
    await waitFor(async () => (await t.node.trace(id))?.some((s) => s.state === 'acked'), { what: 'the event to be acked' })
    const res = await t.node.app.request(`/events/${id}`)
    expect(res.status).toBe(200)
    const body = await res.json()
    expect(body.trace.map((s: { state: string }) => s.state)).toEqual(['received', 'dequeued', 'processed', 'processed', 'acked'])
    expect(body.trace[0].node).toBe('test-node')
    expect((await t.node.app.request('/events/unknown-id')).status).toBe(404)
  })

  it('answers health, readiness, stats and metrics', async () => {
    expect((await t.node.app.request('/healthz')).status).toBe(200)
    expect((await t.node.app.request('/readyz')).status).toBe(200)
    const stats = await (await t.node.app.request('/stats')).json()
    expect(stats).toMatchObject({
      node: 'test-node',
      queue: { unprocessed: expect.any(Number), inflight: expect.any(Number), deadletter: 0 },
      peers: [],
    })
    expect(Object.keys(stats.counters)).toEqual(
      expect.arrayContaining(['received', 'processed', 'failed', 'handedOff', 'handedIn', 'rejected']),
    )
    const metrics = await (await t.node.app.request('/metrics')).text()
    expect(metrics).toMatch(/binge_events_received_total\{node="test-node"\} \d+/)
    expect(metrics).toMatch(/binge_ingest_duration_seconds_bucket/)
    expect(metrics).toMatch(/binge_queue_events\{bucket="unprocessed",node="test-node"\}/)
  })

  it('lists an empty dead-letter bucket and validates replay bodies', async () => {
    expect(await (await t.node.app.request('/deadletter')).json()).toEqual({ count: 0, events: [] })
    expect((await post('/deadletter/replay', '{"ids":"x"}')).status).toBe(400)
    expect(await (await post('/deadletter/replay', '{}')).json()).toEqual({ count: 0, ids: [] })
  })
})

describe('auth', () => {
  let t: TempNode
  beforeAll(async () => {
    t = await startTempNode('', { http: 'authToken: s3cret' })
  })
  afterAll(() => t.close())

  it('needs the bearer token to POST, not to check health', async () => {
    const none = await t.node.app.request('/events', { method: 'POST', body: '{}', headers: json })
    expect(none.status).toBe(401)
    const wrong = await t.node.app.request('/events', { method: 'POST', body: '{}', headers: { ...json, authorization: 'Bearer nope' } })
    expect(wrong.status).toBe(401)
    const ok = await t.node.app.request('/events', { method: 'POST', body: '{}', headers: { ...json, authorization: 'Bearer s3cret' } })
    expect(ok.status).toBe(202)
    expect((await t.node.app.request('/healthz')).status).toBe(200)
  })
})

describe('one handler, two ways in', () => {
  let t: TempNode
  beforeAll(async () => {
    t = await startTempNode('pipelines: { p: { outputs: [ { file: { path: $DIR/p.jsonl } } ] } }', {
      http: 'authToken: s3cret',
      queue: 'highWaterMark: 2, lowWaterMark: 1, maxEvents: 3',
    })
  })
  afterAll(() => t.close())

  // A node answers POST /events from Node's own listener (ingest-route.ts); app.request()
  // reaches the Hono route. Both must give the same status, Retry-After and body.
  const auth = { ...json, authorization: 'Bearer s3cret' }
  const cases: Array<[string, string, string, Record<string, string>]> = [
    ['no token', '/events', '{}', json],
    ['wrong token', '/events', '{}', { ...json, authorization: 'Bearer nope' }],
    ['a bad Idempotency-Key', '/events', '{}', { ...auth, 'idempotency-key': 'has space' }],
    ['text/plain', '/events', '{}', { ...auth, 'content-type': 'text/plain' }],
    ['malformed JSON', '/events', '{"a":', auth],
    ['an unknown pipeline', '/events/nope', '{}', auth],
    ['more events than the queue holds', '/events', '[{},{},{},{}]', auth],
    ['a keyed event', '/events/p', '{"k":1}', { ...auth, 'idempotency-key': 'same-1' }],
  ]
  it.each(cases)('%s', async (_name, path, body, headers) => {
    const viaApp = await t.node.app.request(path, { method: 'POST', body, headers })
    const appBody = await viaApp.text()
    const viaSocket = await send(t.url, path, body, headers)
    expect(viaSocket.status).toBe(viaApp.status)
    // The keyed event was stored by the first request: the second is its duplicate.
    const expected = path === '/events/p' ? { ...JSON.parse(appBody), duplicate: true, duplicates: ['same-1'] } : JSON.parse(appBody)
    expect(JSON.parse(viaSocket.body)).toEqual(expected)
  })
})

describe('hard cap', () => {
  let t: TempNode
  beforeAll(async () => {
    // A batch larger than the whole cap cannot fit whatever the workers have drained.
    t = await startTempNode('', { queue: 'highWaterMark: 2, lowWaterMark: 1, maxEvents: 3' })
  })
  afterAll(() => t.close())

  it('answers a final 413 (no Retry-After) for a batch larger than the whole queue, storing none of it', async () => {
    const res = await t.node.app.request('/events', { method: 'POST', body: '[{},{},{},{}]', headers: json })
    expect(res.status).toBe(413)
    expect(res.headers.get('retry-after')).toBeNull()
    const body = (await res.json()) as { code: string; error: string }
    expect(body.code).toBe('BINGE_PAYLOAD_TOO_LARGE')
    expect(body.error).toMatch(/at most 3 .*queue\.maxEvents: the queue could never hold more/)
    expect(t.node.stats().counters.received).toBe(0)
    expect(t.node.stats().counters.rejected).toBe(1)
  })
})

/** A raw request over a real socket, so sizes and headers are what a client sends. */
function send(
  url: string,
  path: string,
  body: string | Buffer,
  headers: Record<string, string>,
  agent?: Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { method: 'POST', headers, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('bad input over a real socket', () => {
  let t: TempNode
  beforeAll(async () => {
    t = await startTempNode('', { http: 'maxBodyBytes: 4KiB' })
  })
  afterAll(() => t.close())

  const deep = `${'{"a":'.repeat(65)}1${'}'.repeat(65)}`
  const cases: Array<[string, string | Buffer, Record<string, string>, number, RegExp]> = [
    ['malformed JSON', '{"a":1,', json, 400, /malformed JSON at line 1 column 8/],
    ['empty body', '', json, 400, /empty/],
    ['a number', '7', json, 400, /must be a JSON object/],
    ['an array item that is not an object', '[{}, null]', json, 400, /item \[1\] is null/],
    ['nesting deeper than 64', deep, json, 400, /deeper than 64/],
    ['a __proto__ key', '{"__proto__":{"x":1}}', json, 400, /__proto__/],
    ['a constructor key', '{"a":{"constructor":1}}', json, 400, /constructor/],
    ['a body over maxBodyBytes', JSON.stringify({ pad: 'x'.repeat(5000) }), json, 413, /maxBodyBytes/],
    ['a text/plain body', '{}', { 'content-type': 'text/plain' }, 415, /not accepted/],
    ['bad NDJSON on line 2', '{}\n{x}', { 'content-type': 'application/x-ndjson' }, 400, /line 2 column 2/],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), json, 202, /ids/],
  ]

  it.each(cases)('%s: the right status, nothing else changed, the node still answers', async (_name, body, headers, status, message) => {
    const before = t.node.stats().counters.received
    const res = await send(t.url, '/events', body, headers)
    expect(res.status).toBe(status)
    expect(res.body).toMatch(message)
    if (status !== 202) expect(t.node.stats().counters.received).toBe(before)
    const health = await fetch(`${t.url}/healthz`)
    expect(health.status).toBe(200)
  })

  it('a client that goes away mid-body: the request is given up (counted as rejected), nothing is accepted', async () => {
    const before = t.node.stats().counters
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${t.url}/events`, { method: 'POST', headers: { ...json, 'content-length': '1000' } })
      req.on('error', () => resolve())
      req.write('{"half": "a bo', () => setTimeout(() => req.destroy(), 50))
      req.on('close', () => resolve())
    })
    await waitFor(() => t.node.stats().counters.rejected === before.rejected + 1, { what: 'the cut-off request to be given up' })
    expect(t.node.stats().counters.received).toBe(before.received)
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  })

  it('refuses a chunked body that grows past maxBodyBytes without reading it all', async () => {
    const res = await send(t.url, '/events', Buffer.alloc(64 * 1024, 0x20), { ...json, 'transfer-encoding': 'chunked' })
    expect(res.status).toBe(413)
  })
})

describe('answers over real sockets, written together at the end of each event-loop turn', () => {
  for (const mode of ['memory', 'durable'] as const) {
    it(`${mode}: each of 300 concurrent POSTs on 50 keep-alive sockets gets its own answer`, async () => {
      const t = await startTempNode('', { queue: `mode: ${mode}` })
      const agent = new Agent({ keepAlive: true, maxSockets: 50 })
      try {
        // Every third request is malformed: a 400 must reach its own client, between 202s.
        const results = await Promise.all(
          Array.from({ length: 300 }, async (_, i) => {
            const bad = i % 3 === 2
            const res = await send(t.url, '/events', bad ? '{"i":' : `{"i":${i}}`, { ...json, 'idempotency-key': `req-${i}` }, agent)
            return { i, bad, res }
          }),
        )
        for (const { i, bad, res } of results) {
          if (bad) {
            expect(res.status).toBe(400)
            expect(res.body).toMatch(/malformed JSON at line 1 column 6/)
          } else {
            expect(res.status).toBe(202)
            expect(JSON.parse(res.body)).toEqual({ ids: [`req-${i}`] })
          }
        }
        expect(t.node.stats().counters.received).toBe(200)
      } finally {
        agent.destroy()
        await t.close()
      }
    })
  }
})

describe('ingestTarget', () => {
  it.each([
    ['/events', undefined],
    ['/events?debug=1', undefined],
    ['/events/orders', 'orders'],
    ['/events/orders?x=1', 'orders'],
    ['/events/', null],
    ['/events/a/b', null],
    ['/events/caf%C3%A9', null], // percent-encoded: Hono's router decodes it
    ['/eventsx', null],
    ['/', null],
  ])('%s -> %s', (url, expected) => {
    expect(ingestTarget(url)).toBe(expected)
  })
})
