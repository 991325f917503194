// Limits a request meets at the HTTP door, over a real socket: a slow body is cut off
// at http.requestTimeout (not up to 30 s later), a body of more events than one request
// may hold is a final 413, numbers a double cannot hold are a 400, and an
// Idempotency-Key reused for a different event is a 422 rather than a silent drop.
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTempNode, type TempNode } from '../support/temp-node.js'

const json = { 'content-type': 'application/json' }

describe('http limits', () => {
  let t: TempNode
  beforeAll(async () => {
    // A queue far larger than a request, so only the per-request cap can refuse.
    t = await startTempNode('', { http: 'requestTimeout: 1s', queue: 'maxEvents: 1000000, highWaterMark: 900000, lowWaterMark: 800000' })
  })
  afterAll(() => t.close())

  const post = (body: string, headers: Record<string, string> = json) => fetch(`${t.url}/events`, { method: 'POST', body, headers })

  it('cuts off a client that sends its body too slowly within requestTimeout plus a small margin', async () => {
    const port = Number(new URL(t.url).port)
    const started = Date.now()
    const ended = await new Promise<{ ms: number; answer: string }>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      let answer = ''
      socket.setEncoding('utf8')
      socket.on('data', (d: string) => (answer += d))
      socket.on('error', reject)
      socket.on('close', () => resolve({ ms: Date.now() - started, answer }))
      // Headers promise 100 bytes; a few come, then nothing: the socket is held open.
      socket.write('POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"slow":')
    })
    expect(ended.answer).toMatch(/^HTTP\/1\.1 408/)
    // requestTimeout is 1 s, checked every 250 ms; Node's default check ran every 30 s
    // (this test took 29.9 s on main). The margin is for a loaded machine.
    expect(ended.ms).toBeGreaterThanOrEqual(900)
    expect(ended.ms).toBeLessThan(3_000)
    expect(t.node.stats().counters.received).toBe(0)
  })

  it('refuses a 1 MiB body of {} (350,000 events) with a final 413 naming http.maxEventsPerRequest', async () => {
    const before = t.node.stats().counters.received
    const body = `[${Array.from({ length: 349_000 }, () => '{}').join(',')}]`
    expect(body.length).toBeLessThan(1024 * 1024)
    const res = await post(body)
    expect(res.status).toBe(413)
    expect(res.headers.get('retry-after')).toBeNull()
    const answer = (await res.json()) as { code: string; error: string }
    expect(answer.code).toBe('BINGE_PAYLOAD_TOO_LARGE')
    expect(answer.error).toBe(
      'the body holds more than 10000 events; at most 10000 are taken in one request (http.maxEventsPerRequest); split it',
    )
    const ndjson = await post('{}\n'.repeat(300_000), { 'content-type': 'application/x-ndjson' })
    expect(ndjson.status).toBe(413)
    expect(((await ndjson.json()) as { error: string }).error).toMatch(/more than 10000 events/)
    expect(t.node.stats().counters.received).toBe(before)
    // Exactly the cap is taken.
    expect((await post(`[${Array.from({ length: 10_000 }, () => '{}').join(',')}]`)).status).toBe(202)
  })

  it.each([
    ['{"t":1e400}', /the body\.t is a number too large for a double/],
    ['{"a":{"b":[1,-1e400]}}', /the body\.a\.b\[1\] is a number too large for a double/],
    ['[{"ok":1},{"n":1E999}]', /item \[1\]\.n is a number too large/],
  ])('refuses %s with 400 rather than storing null', async (body, message) => {
    const before = t.node.stats().counters.received
    const res = await post(body)
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: string }).error).toMatch(message)
    expect(t.node.stats().counters.received).toBe(before)
  })

  it('answers 422 to an Idempotency-Key reused for a different event, whichever came first, and keeps both apart', async () => {
    const keyed = (body: string, key: string) => post(body, { ...json, 'idempotency-key': key })
    const before = t.node.stats().counters.received
    // A batch keyed K gets K-0, K-1; a single request keyed K-0 with another event collides.
    const batch = await keyed('[{"n":0},{"n":1}]', 'order-7')
    expect(await batch.json()).toEqual({ ids: ['order-7-0', 'order-7-1'] })
    const single = await keyed('{"other":true}', 'order-7-0')
    expect(single.status).toBe(422)
    expect(await single.json()).toMatchObject({ code: 'BINGE_IDEMPOTENCY_CONFLICT', id: 'order-7-0' })
    // The same event again is still a plain duplicate.
    const same = await keyed('{"n":0}', 'order-7-0')
    expect(same.status).toBe(202)
    expect(await same.json()).toEqual({ ids: ['order-7-0'], duplicate: true, duplicates: ['order-7-0'] })
    // The other order: the single first, then a batch whose first id is taken. Nothing of it is stored.
    expect((await keyed('{"single":1}', 'order-8-0')).status).toBe(202)
    const late = await keyed('[{"n":0},{"n":1}]', 'order-8')
    expect(late.status).toBe(422)
    expect(t.node.stats().counters.received).toBe(before + 3)
    // A retry of the whole batch is a duplicate of both, as before.
    const retry = await keyed('[{"n":0},{"n":1}]', 'order-7')
    expect(await retry.json()).toEqual({ ids: ['order-7-0', 'order-7-1'], duplicate: true, duplicates: ['order-7-0', 'order-7-1'] })
    // The same events written with other whitespace (another client library) are the same events.
    const spaced = await keyed('[ { "n" : 0 },\n  { "n": 1 } ]', 'order-7')
    expect(await spaced.json()).toEqual({ ids: ['order-7-0', 'order-7-1'], duplicate: true, duplicates: ['order-7-0', 'order-7-1'] })
  })
})
