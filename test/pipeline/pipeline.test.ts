// Events through real pipelines on a real node: filter and map, outputs, and what
// happens to failures (retry, dead-letter, replay, drop) without blocking the queue.
import { afterEach, describe, expect, it } from 'vitest'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'
import { readJsonLines as lines } from '../support/json-lines.js'

const json = { 'content-type': 'application/json' }

async function post(t: TempNode, body: unknown, path = '/events'): Promise<string[]> {
  const res = await t.node.app.request(path, { method: 'POST', body: JSON.stringify(body), headers: json })
  expect(res.status).toBe(202)
  return (await res.json()).ids
}

const drained = (t: TempNode) => () => {
  const q = t.node.queue.depth()
  return q.unprocessed === 0 && q.inflight === 0
}

let node: TempNode | undefined
afterEach(async () => {
  await node?.close()
  node = undefined
})

describe('pipelines', () => {
  it('runs when, filter and map, and writes envelopes or bare data', async () => {
    node = await startTempNode(`
pipelines:
  hot-rooms:
    when: 'type = "temperature"'
    steps:
      - filter: 'celsius > 30'
      - map: '$merge([$, {"fahrenheit": celsius * 9 / 5 + 32}])'
    outputs:
      - file: { path: $DIR/hot.jsonl }
      - file: { path: $DIR/bare.jsonl, envelope: false }
`)
    const [hot] = await post(node, { type: 'temperature', room: 'a', celsius: 35 })
    await post(node, [
      { type: 'temperature', room: 'b', celsius: 20 },
      { type: 'humidity', value: 50 },
    ])
    await waitFor(drained(node), { what: 'the queue to drain' })
    const out = lines(join(node.dir, 'hot.jsonl'))
    expect(out).toEqual([
      {
        id: hot,
        pipeline: 'hot-rooms',
        node: 'test-node',
        origin: 'test-node',
        receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        data: { type: 'temperature', room: 'a', celsius: 35, fahrenheit: 95 },
      },
    ])
    expect(lines(join(node.dir, 'bare.jsonl'))).toEqual([{ type: 'temperature', room: 'a', celsius: 35, fahrenheit: 95 }])
    const counters = node.node.stats().counters
    expect(counters).toMatchObject({ received: 3, processed: 1, filtered: 1 })
  })

  it('sends each event to every pipeline whose when holds', async () => {
    node = await startTempNode(`
pipelines:
  a: { when: 'n > 1', outputs: [ { file: { path: $DIR/a.jsonl } } ] }
  b: { when: 'n > 2', outputs: [ { file: { path: $DIR/b.jsonl } } ] }
`)
    await post(node, [{ n: 1 }, { n: 2 }, { n: 3 }])
    await waitFor(drained(node), { what: 'the queue to drain' })
    expect(
      lines(join(node.dir, 'a.jsonl'))
        .map((e) => (e.data as { n: number }).n)
        .sort(),
    ).toEqual([2, 3])
    expect(lines(join(node.dir, 'b.jsonl')).map((e) => (e.data as { n: number }).n)).toEqual([3])
  })

  it('retries a failing output, dead-letters it, and replays it exactly once after a fix', async () => {
    node = await startTempNode(`
pipelines:
  store:
    outputs: [ { file: { path: $DIR/blocked/out.jsonl } } ]
    onFail:
      retry: { attempts: 3, backoff: 5ms, maxBackoff: 20ms }
      then: deadletter
`)
    // A plain file where the output's directory should be: every write fails.
    writeFileSync(join(node.dir, 'blocked'), 'not a directory')
    const [id] = await post(node, { order: 7 })
    await waitFor(() => node!.node.queue.depth().deadletter === 1, { what: 'the event to be dead-lettered' })
    expect(node.node.queue.depth()).toMatchObject({ unprocessed: 0, inflight: 0 })
    const listed = await (await node.node.app.request('/deadletter')).json()
    expect(listed.count).toBe(1)
    expect(listed.events[0]).toMatchObject({ pipeline: 'store', attempts: 3, event: { id, data: { order: 7 } } })
    expect(listed.events[0].error).toMatch(/ENOTDIR|not a directory|EEXIST/)

    rmSync(join(node.dir, 'blocked'))
    const replay = await node.node.app.request('/deadletter/replay', { method: 'POST', body: JSON.stringify({ ids: [id] }), headers: json })
    expect(await replay.json()).toEqual({ count: 1, ids: [id] })
    await waitFor(() => lines(join(node!.dir, 'blocked/out.jsonl')).length === 1, { what: 'the replayed event in the output' })
    await waitFor(drained(node), { what: 'the queue to drain' })
    expect(node.node.queue.depth().deadletter).toBe(0)
    expect(lines(join(node.dir, 'blocked/out.jsonl')).map((e) => e.id)).toEqual([id])
  })

  it('does not let a poison event block the events behind it', async () => {
    node = await startTempNode(`
workers: 1
pipelines:
  strict:
    steps: [ { map: '$number(value) > 0 ? $ : value' } ]
    outputs: [ { file: { path: $DIR/ok.jsonl } } ]
    onFail: { then: drop }
`)
    await post(node, [{ value: '-1' }, { value: '5' }, { value: '6' }])
    await waitFor(drained(node), { what: 'the queue to drain' })
    expect(lines(join(node.dir, 'ok.jsonl')).map((e) => (e.data as { value: string }).value)).toEqual(['5', '6'])
    expect(node.node.stats().counters).toMatchObject({ failed: 1, dropped: 1, processed: 2 })
  })

  it('fails an expression that runs too long instead of stalling the worker', async () => {
    node = await startTempNode(`
workers: 1
pipelines:
  slow:
    steps: [ { map: '($f := function($n) { $n = 0 ? 0 : $f($n - 1) + $f($n - 1) }; {"x": $f(40)})' } ]
    outputs: [ { file: { path: $DIR/never.jsonl } } ]
`)
    const [id] = await post(node, { a: 1 })
    await waitFor(() => node!.node.queue.depth().deadletter === 1, { what: 'the slow event to be dead-lettered', timeoutMs: 30_000 })
    const listed = await (await node.node.app.request('/deadletter')).json()
    expect(listed.events[0].event.id).toBe(id)
    expect(listed.events[0].error).toMatch(/D1012|timeout|too long/i)
  })
})
