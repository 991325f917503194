// How stateful steps keep their state: what commits with an ack and what does not,
// under concurrent workers, across a restart, when a step or an output fails, and the
// lock that keeps two batches of one stateful pipeline from interleaving.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log.js'
import { Metrics } from '../../src/metrics.js'
import { BingeNode } from '../../src/node.js'
import { Engine } from '../../src/pipeline/engine.js'
import { Pipeline } from '../../src/pipeline/pipeline.js'
import { Lock } from '../../src/pipeline/state/lock.js'
import { StepState } from '../../src/pipeline/state/step-state.js'
import { MemoryQueue } from '../../src/queue/index.js'
import type { EventRecord, QueuedEvent } from '../../src/queue/types.js'
import { TraceStore } from '../../src/trace.js'
import { startTempNode, waitFor, type TempNode } from '../support/temp-node.js'
import { readJsonLines as lines } from '../support/json-lines.js'

const json = { 'content-type': 'application/json' }

async function post(node: BingeNode, body: unknown, path = '/events'): Promise<string[]> {
  const res = await node.app.request(path, { method: 'POST', body: JSON.stringify(body), headers: json })
  expect(res.status).toBe(202)
  return ((await res.json()) as { ids: string[] }).ids
}

const drained = (node: BingeNode) => () => {
  const q = node.queue.depth()
  return q.unprocessed === 0 && q.inflight === 0
}

let temp: TempNode | undefined
afterEach(async () => {
  await temp?.close()
  temp = undefined
})

describe('step state in memory', () => {
  it('undoes a failed event, then a failed batch, and writes only what changed', () => {
    const s = new StepState<number>('p/0.x/', { scanState: async () => [] })
    s.beginEvent()
    s.set('a', 1)
    s.endEvent(true)
    s.beginEvent()
    s.set('a', 2)
    s.set('b', 1)
    s.endEvent(false)
    expect([s.get('a'), s.get('b')]).toEqual([1, undefined])
    expect(s.ops()).toEqual([{ type: 'put', key: 'p/0.x/a', value: 1 }])
    s.commit()
    s.set('a', 5)
    s.delete('a')
    s.set('c', 3)
    s.delete('c')
    expect(s.ops()).toEqual([{ type: 'del', key: 'p/0.x/a' }])
    s.rollback()
    expect([...s.all()]).toEqual([['a', 1]])
    expect(s.ops()).toEqual([])
  })

  it('hands out a lock in call order, each holder after the previous released', async () => {
    const lock = new Lock()
    const order: string[] = []
    const first = await lock.acquire()
    const second = lock.acquire().then((release) => {
      order.push('second')
      return release
    })
    const third = lock.acquire().then((release) => {
      order.push('third')
      release()
    })
    await new Promise((r) => setTimeout(r, 10))
    expect(order).toEqual([])
    first()
    first() // twice is harmless
    ;(await second)()
    await third
    expect(order).toEqual(['second', 'third'])
  })
})

describe('the engine and the pipeline lock', () => {
  function setup() {
    const queue = new MemoryQueue({ maxEvents: 10_000, maxBytes: 1 << 24, dedupeWindowMs: 60_000 })
    const dir = mkdtempSync(join(tmpdir(), 'binge-engine-'))
    const deps = {
      nodeId: 'n',
      log: silentLogger,
      metrics: new Metrics('n', () => queue.depth(), { defaultMetrics: false }),
      trace: new TraceStore('n'),
      state: queue,
    }
    const spec = {
      name: 'w',
      steps: [
        { window: { size: 1000, time: 't', lateness: 0, idle: 1000, aggregate: { count: true, sum: [], min: [], max: [], avg: [] } } },
      ],
      outputs: [{ file: { path: join(dir, 'out.jsonl'), envelope: false } }],
      onFail: { then: 'deadletter' as const },
    }
    const engine = new Engine([new Pipeline(spec, deps)], silentLogger, deps.trace)
    let n = 0
    const make = (t: number): EventRecord => ({ id: `e${n++}`, origin: 'n', receivedAt: 0, hops: 0, data: { t } })
    const take = async (ts: number[]): Promise<QueuedEvent[]> => {
      await queue.enqueue(ts.map(make))
      return queue.dequeue(ts.length)
    }
    return { queue, engine, take, dir }
  }

  it('holds a stateful pipeline from one batch to its ack, so a second batch waits and sees it', async () => {
    const { queue, engine, take, dir } = setup()
    await queue.open()
    const a = await take([100, 200])
    const b = await take([300])
    const first = await engine.begin(a, new AbortController().signal)
    expect(first.state).toEqual([
      { type: 'put', key: 'w/0.window/k:', value: expect.objectContaining({ windows: { 0: expect.objectContaining({ count: 2 }) } }) },
      { type: 'put', key: 'w/0.window/meta', value: { maxTime: 200, watermark: 200 } },
    ])
    let secondStarted = false
    const second = engine.begin(b, new AbortController().signal).then((o) => {
      secondStarted = true
      return o
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(secondStarted).toBe(false)
    await queue.ackBatch(a, first.acks, first.state)
    first.settle(true)
    const next = await second
    expect(next.state[0]).toMatchObject({ value: { windows: { 0: { count: 3 } } } })
    // The ack failed: the in-memory state goes, and the store's (two events) comes back.
    next.settle(false)
    const again = await engine.begin(
      b.map((e) => ({ ...e })),
      new AbortController().signal,
    )
    expect(again.state[0]).toMatchObject({ value: { windows: { 0: { count: 3 } } } })
    again.settle(false)
    expect(await queue.getState('w/0.window/k:')).toMatchObject({ windows: { 0: { count: 2 } } })
    await queue.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lets go of the lock and the state when a batch is aborted', async () => {
    const { queue, engine, take, dir } = setup()
    await queue.open()
    const controller = new AbortController()
    controller.abort(new Error('shutting down'))
    const a = await take([100])
    // The abort surfaces at the first await that checks it; either way nothing is held.
    const outcome = await engine.begin(a, controller.signal).catch(() => undefined)
    outcome?.settle(false)
    const b = await take([200])
    const next = await engine.begin(b, new AbortController().signal)
    expect(next.state[0]).toMatchObject({ value: { windows: { 0: { count: 1 } } } })
    next.settle(false)
    await queue.close()
    rmSync(dir, { recursive: true, force: true })
  })
})

describe('stateful steps on a node', () => {
  it('count exactly under eight concurrent workers: windows, dedupe and a burst-only throttle', async () => {
    temp = await startTempNode(`
workers: 8
pipelines:
  counts:
    steps: [ { window: { key: g, size: 100, time: t, lateness: 10s, idle: 200ms, aggregate: { sum: [v] } } } ]
    outputs: [ { file: { path: $DIR/windows.jsonl, envelope: false } } ]
  firsts:
    steps: [ { dedupe: { key: u, window: 1h, time: t } } ]
    outputs: [ { file: { path: $DIR/firsts.jsonl, envelope: false } } ]
  capped:
    steps: [ { throttle: { rate: 1/1h, burst: 3, key: u, time: '0' } } ]
    outputs: [ { file: { path: $DIR/capped.jsonl, envelope: false } } ]
`)
    const node = temp.node
    const N = 3000
    const events = Array.from({ length: N }, (_, t) => ({ t, g: `g${t % 5}`, u: `u${t % 97}`, v: t % 10 }))
    const chunks = Array.from({ length: N / 25 }, (_, i) => events.slice(i * 25, i * 25 + 25))
    await Promise.all(chunks.map((chunk) => post(node, chunk)))
    await waitFor(drained(node), { what: 'the queue to drain' })
    const truth = new Map<string, { count: number; sum: number }>()
    for (const e of events) {
      const w = `${e.g}@${new Date(Math.floor(e.t / 100) * 100).toISOString()}`
      const c = truth.get(w) ?? { count: 0, sum: 0 }
      truth.set(w, { count: c.count + 1, sum: c.sum + e.v })
    }
    const windowsFile = join(temp.dir, 'windows.jsonl')
    await waitFor(() => lines(windowsFile).length >= truth.size, { what: `${truth.size} windows`, timeoutMs: 20_000 })
    const got = new Map(lines(windowsFile).map((l) => [`${l.key}@${l.start}`, { count: l.count, sum: (l.sum as { v: number }).v }]))
    expect(got).toEqual(truth)
    const firsts = lines(join(temp.dir, 'firsts.jsonl')).map((l) => l.u)
    expect(firsts).toHaveLength(97)
    expect(new Set(firsts).size).toBe(97)
    const capped = lines(join(temp.dir, 'capped.jsonl'))
    expect(capped).toHaveLength(97 * 3)
    expect(node.queue.depth().deadletter).toBe(0)
  })

  it('delays events over the rate instead of dropping them', async () => {
    temp = await startTempNode(`
workers: 2
pipelines:
  slow:
    steps: [ { throttle: { rate: 20/s, burst: 1, mode: delay } } ]
    outputs: [ { file: { path: $DIR/out.jsonl, envelope: false } } ]
`)
    const started = Date.now()
    await post(
      temp.node,
      Array.from({ length: 8 }, (_, n) => ({ n })),
    )
    const out = join(temp.dir, 'out.jsonl')
    await waitFor(() => lines(out).length === 8, { what: 'all eight events' })
    const elapsed = Date.now() - started
    // One token at once, then one every 50 ms: the eighth passes after about 350 ms.
    expect(elapsed).toBeGreaterThanOrEqual(300)
    expect(lines(out).map((l) => l.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
  })

  it('keeps window and dedupe state across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'binge-restart-'))
    const config = parseConfig(
      `
node: { id: n1, dataDir: ${JSON.stringify(join(dir, 'data'))} }
http: { listen: '127.0.0.1:0' }
pipelines:
  counts:
    steps: [ { dedupe: { key: id, window: 1h, time: t } }, { window: { size: 1s, time: t, idle: 100ms } } ]
    outputs: [ { file: { path: ${JSON.stringify(join(dir, 'out.jsonl'))}, envelope: false } } ]
`,
      join(dir, 'binge.yaml'),
    )
    const first = new BingeNode(config, { log: silentLogger, processMetrics: false })
    await first.start()
    await post(first, [
      { id: 1, t: 100 },
      { id: 2, t: 200 },
      { id: 2, t: 250 },
    ])
    await waitFor(drained(first), { what: 'the first node to drain' })
    await first.stop()
    const second = new BingeNode(config, { log: silentLogger, processMetrics: false })
    await second.start()
    try {
      await post(second, [
        { id: 1, t: 300 },
        { id: 3, t: 400 },
        { id: 4, t: 1500 },
      ])
      await waitFor(() => lines(join(dir, 'out.jsonl')).length === 2, { what: 'two windows', timeoutMs: 10_000 })
      expect(lines(join(dir, 'out.jsonl'))).toEqual([
        { start: '1970-01-01T00:00:00.000Z', end: '1970-01-01T00:00:01.000Z', count: 3 },
        { start: '1970-01-01T00:00:01.000Z', end: '1970-01-01T00:00:02.000Z', count: 1 },
      ])
    } finally {
      await second.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('undoes the state of an event a later step fails', async () => {
    temp = await startTempNode(`
workers: 1
pipelines:
  p:
    steps:
      - dedupe: { key: k, window: 1h, time: t }
      - map: 'bad ? $error("refused") : $'
    outputs: [ { file: { path: $DIR/out.jsonl, envelope: false } } ]
`)
    await post(temp.node, [
      { k: 'a', t: 1, bad: true },
      { k: 'a', t: 2, bad: false },
      { k: 'a', t: 3, bad: false },
    ])
    await waitFor(drained(temp.node), { what: 'the queue to drain' })
    expect(lines(join(temp.dir, 'out.jsonl'))).toEqual([{ k: 'a', t: 2, bad: false }])
    expect(temp.node.queue.depth().deadletter).toBe(1)
  })

  it('fails a whole batch when its output fails, undoes its state, and a replay counts it once', async () => {
    temp = await startTempNode(`
workers: 1
pipelines:
  p:
    steps: [ { dedupe: { key: k, window: 1h, time: t } } ]
    outputs: [ { file: { path: $DIR/blocked/out.jsonl, envelope: false } } ]
    onFail: { retry: { attempts: 2, backoff: 5ms, maxBackoff: 10ms }, then: deadletter }
`)
    const node = temp.node
    writeFileSync(join(temp.dir, 'blocked'), 'not a directory')
    await post(node, [
      { k: 'a', t: 1 },
      { k: 'a', t: 2 },
      { k: 'b', t: 3 },
    ])
    // The duplicate (filtered) fails with its batch: its effect was undone with the others'.
    await waitFor(() => node.queue.depth().deadletter === 3, { what: 'the batch to be dead-lettered' })
    expect(await node.queue.scanState('p/0.dedupe/k:')).toEqual([])
    rmSync(join(temp.dir, 'blocked'))
    const replay = await node.app.request('/deadletter/replay', { method: 'POST', body: '{}', headers: json })
    expect(((await replay.json()) as { count: number }).count).toBe(3)
    await waitFor(() => drained(node)() && node.queue.depth().deadletter === 0, { what: 'the replay to finish' })
    expect(lines(join(temp.dir, 'blocked/out.jsonl'))).toEqual([
      { k: 'a', t: 1 },
      { k: 'b', t: 3 },
    ])
    expect((await node.queue.scanState('p/0.dedupe/k:')).map((e) => e.key)).toEqual(['p/0.dedupe/k:"a"', 'p/0.dedupe/k:"b"'])
  })

  it('keeps a window whose output fails and delivers it, once, when the output is back', async () => {
    temp = await startTempNode(`
workers: 1
pipelines:
  w:
    steps: [ { window: { size: 1s, time: t, idle: 50ms } } ]
    outputs: [ { file: { path: $DIR/blocked/out.jsonl, envelope: false } } ]
    onFail: { retry: { attempts: 1 } }
`)
    const node = temp.node
    writeFileSync(join(temp.dir, 'blocked'), 'not a directory')
    await post(node, [{ t: 100 }, { t: 200 }, { t: 1100 }])
    await waitFor(drained(node), { what: 'the queue to drain' })
    // Flushes run and fail meanwhile: the window stays in the state, nothing is dead-lettered.
    await new Promise((r) => setTimeout(r, 500))
    expect(node.queue.depth().deadletter).toBe(0)
    expect((await node.queue.scanState('w/0.window/k:'))[0]?.value).toMatchObject({ windows: { 0: { count: 2 } } })
    rmSync(join(temp.dir, 'blocked'))
    const out = join(temp.dir, 'blocked/out.jsonl')
    await waitFor(() => lines(out).length === 2, { what: 'both windows', timeoutMs: 10_000 })
    await new Promise((r) => setTimeout(r, 300))
    expect(lines(out).map((l) => l.count)).toEqual([2, 1])
    expect(await node.queue.scanState('w/0.window/k:')).toEqual([])
  })
})
