// Model-based test (Vector's disk buffer does the same): random sequences of enqueue,
// concurrent enqueue, dequeue, ack (with dead letters and state), nack, replay, taking
// a handoff batch, completing or returning one, clock ticks and restarts run against a
// queue and against a plain model of what it must hold. After every step the counts,
// the dead letters, the pending handoff batches, the dedupe answers and the state agree
// with the model; every dequeue hands out exactly the events the model says are oldest,
// and every take exactly the newest it may take; at the end every batch is returned and
// everything still held is drained and compared, so an accepted event that went
// missing, or showed up twice, fails the run. A restart of the durable queue is a
// close and reopen of its directory (in-flight events go back to unprocessed, handing-
// off batches stay promised); the memory queue forgets everything, and so does its model.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { EventQueue, EventRecord, QueuedEvent } from '../../src/queue/types.js'
import { type Backend, type QueueSettings, type TestQueue, backends, bytesOf, event } from './backends.js'

type Op =
  | { kind: 'enqueue'; calls: string[][] }
  | { kind: 'dequeue'; max: number }
  | { kind: 'ack'; pick: number; deadletter: string[]; state: boolean }
  | { kind: 'ackBatch'; picks: number[]; deadletter: string[]; state: boolean }
  | { kind: 'nack'; picks: number[] }
  | { kind: 'replay'; ids: string[] | undefined }
  | { kind: 'take'; max: number; maxHops: number; excludeOrigin: string | undefined; reuse: boolean }
  | { kind: 'complete'; pick: number }
  | { kind: 'return'; pick: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'restart' }

const POOL = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
const id = fc.constantFrom(...POOL)
/** Each id's event has its own hop count and origin, so takes have something to skip. */
const recordFor = (i: string): EventRecord =>
  event(i, { data: { v: i }, hops: POOL.indexOf(i) % 3, origin: i < 'e' ? 'node-test' : 'node-b' })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('enqueue' as const),
      calls: fc.array(fc.array(id, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('dequeue' as const), max: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat(), deadletter: fc.subarray(['p1', 'p2']), state: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('ackBatch' as const),
      picks: fc.array(fc.nat(), { maxLength: 3 }),
      deadletter: fc.subarray(['p1', 'p2']),
      state: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('nack' as const), picks: fc.array(fc.nat(), { maxLength: 3 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('replay' as const), ids: fc.option(fc.subarray(POOL, { maxLength: 2 }), { nil: undefined }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('take' as const),
      max: fc.integer({ min: 1, max: 3 }),
      maxHops: fc.integer({ min: 1, max: 3 }),
      excludeOrigin: fc.option(fc.constant('node-b'), { nil: undefined }),
      reuse: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('return' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const) }) },
)

const WINDOW = 50

/** Caps small enough to be hit: by count, by bytes (in events' worth), or both. */
const limitsArb = fc.record({ maxEvents: fc.integer({ min: 1, max: 6 }), bytesInEvents: fc.constantFrom(2.5, 4.5, 100) })
type Limits = { maxEvents: number; maxBytes: number }

interface Entry {
  ord: number
  record: EventRecord
  key?: string
}

interface Batch {
  handoffId: string
  peer: string
  takenAt: number
  entries: Entry[]
}

/** What the queue must hold: the reference the real queue is compared against. */
class Model {
  unprocessed: Entry[] = []
  inflight: Entry[] = []
  /** Pending handoff batches, in the order taken. */
  handing: Batch[] = []
  dead: Array<{ sortKey: string; entry: Entry; pipeline: string }> = []
  seen = new Map<string, number>()
  state: number | undefined
  ord = 0

  constructor(private readonly limits: Limits) {}

  held(): Entry[] {
    return [...this.unprocessed, ...this.inflight, ...this.handing.flatMap((b) => b.entries)]
  }

  isSeen(id: string, now: number): boolean {
    const at = this.seen.get(id)
    return at !== undefined && at > now - WINDOW
  }

  /** The newest unprocessed entries a take may have, in queue order. */
  take(max: number, maxHops: number, excludeOrigin: string | undefined): Entry[] {
    const eligible = this.unprocessed.filter((e) => e.record.hops < maxHops && e.record.origin !== excludeOrigin)
    const taken = eligible.slice(Math.max(0, eligible.length - max))
    this.unprocessed = this.unprocessed.filter((e) => !taken.includes(e))
    return taken
  }

  /** One call: null when it must be refused as full. */
  enqueue(records: EventRecord[], now: number): Array<{ id: string; duplicate: boolean }> | null {
    const mine = new Set<string>()
    const fresh: EventRecord[] = []
    const results = records.map((r) => {
      const duplicate = mine.has(r.id) || this.isSeen(r.id, now)
      if (!duplicate) {
        mine.add(r.id)
        fresh.push(r)
      }
      return { id: r.id, duplicate }
    })
    const held = this.held()
    const bytes = [...held.map((e) => e.record), ...fresh].reduce((n, r) => n + bytesOf(r), 0)
    if (held.length + fresh.length > this.limits.maxEvents || bytes > this.limits.maxBytes) return null
    for (const r of fresh) {
      this.seen.set(r.id, now)
      this.unprocessed.push({ ord: this.ord++, record: r })
    }
    return results
  }

  depth() {
    return {
      unprocessed: this.unprocessed.length,
      inflight: this.inflight.length,
      handingOff: this.handing.reduce((n, b) => n + b.entries.length, 0),
      deadletter: this.dead.length,
      bytes: this.held().reduce((n, e) => n + bytesOf(e.record), 0),
    }
  }

  returnInflight(entries: Entry[]): void {
    this.inflight = this.inflight.filter((e) => !entries.includes(e))
    this.putBack(entries)
  }

  /** Entries go back to their own place in the order. */
  putBack(entries: Entry[]): void {
    this.unprocessed = [...this.unprocessed, ...entries].sort((x, y) => x.ord - y.ord)
  }
}

const recordOf = (e: QueuedEvent): EventRecord => {
  const { key: _key, ...record } = e
  return record
}

async function runScenario(backend: Backend, caps: { maxEvents: number; bytesInEvents: number }, ops: Op[]): Promise<void> {
  const place = backend.place()
  let now = 1_000
  const limits = {
    maxEvents: caps.maxEvents,
    maxBytes: Math.floor(bytesOf(event('a', { data: { v: 'a' } })) * caps.bytesInEvents),
  }
  const settings: Partial<QueueSettings> = { ...limits, dedupeWindowMs: WINDOW, now: () => now }
  const model = new Model(limits)
  let q: TestQueue = await place.open(settings)
  const check = async (): Promise<void> => {
    expect(q.depth()).toEqual(model.depth())
    const letters = await q.listDeadletter()
    const expected = [...model.dead].sort((x, y) => (x.sortKey < y.sortKey ? -1 : 1))
    expect(letters.map((l) => [l.event.id, l.pipeline])).toEqual(expected.map((d) => [d.entry.record.id, d.pipeline]))
    expect(await q.getState('k')).toEqual(model.state)
    // The stored texts a backend may add (HandoffBatch.texts) are its events' JSON.
    const pending = await q.pendingHandoffs()
    for (const b of pending) if (b.texts !== undefined) expect(b.texts.map((t) => JSON.parse(t))).toEqual(b.events)
    expect(pending.map(({ texts: _texts, ...b }) => b)).toEqual(
      model.handing.map((b) => ({ handoffId: b.handoffId, peer: b.peer, takenAt: b.takenAt, events: b.entries.map((e) => e.record) })),
    )
    expect(await q.seen(POOL)).toEqual(POOL.map((i) => model.isSeen(i, now)))
  }
  try {
    for (const [step, op] of ops.entries()) {
      switch (op.kind) {
        case 'enqueue': {
          const calls = op.calls.map((ids) => ids.map(recordFor))
          // Submitted together: the durable queue commits them as one group.
          const settled = await Promise.allSettled(calls.map((records) => q.enqueue(records)))
          settled.forEach((s, i) => {
            const expected = model.enqueue(calls[i]!, now)
            if (expected === null) expect(s).toMatchObject({ status: 'rejected', reason: { code: 'BINGE_QUEUE_FULL' } })
            else expect(s).toEqual({ status: 'fulfilled', value: expected })
          })
          break
        }
        case 'dequeue': {
          const got = await q.dequeue(op.max)
          const taken = model.unprocessed.splice(0, op.max)
          expect(got.map(recordOf)).toEqual(taken.map((e) => e.record))
          taken.forEach((e, i) => {
            e.key = got[i]!.key
          })
          model.inflight.push(...taken)
          break
        }
        case 'ack': {
          if (model.inflight.length === 0) break
          const entry = model.inflight[op.pick % model.inflight.length]!
          await q.ack(
            { ...entry.record, key: entry.key! },
            {
              deadletter: op.deadletter.map((pipeline) => ({ pipeline, error: 'boom', attempts: 1 })),
              state: op.state ? [{ type: 'put', key: 'k', value: step }] : [],
            },
          )
          model.inflight = model.inflight.filter((e) => e !== entry)
          for (const pipeline of op.deadletter) {
            model.dead.push({ sortKey: `${entry.record.id}\u0000${pipeline}\u0000${entry.key}`, entry, pipeline })
          }
          if (op.state) model.state = step
          break
        }
        case 'ackBatch': {
          // Several events (or none: state alone) in one write; the batch state last.
          const picked = model.inflight.length === 0 ? [] : [...new Set(op.picks.map((p) => model.inflight[p % model.inflight.length]!))]
          const deadletter = op.deadletter.map((pipeline) => ({ pipeline, error: 'boom', attempts: 1 }))
          await q.ackBatch(
            picked.map((e) => ({ ...e.record, key: e.key! })),
            picked.map(() => ({ deadletter })),
            op.state ? [{ type: 'put', key: 'k', value: step }] : [],
          )
          model.inflight = model.inflight.filter((e) => !picked.includes(e))
          for (const entry of picked) {
            for (const pipeline of op.deadletter) {
              model.dead.push({ sortKey: `${entry.record.id}\u0000${pipeline}\u0000${entry.key}`, entry, pipeline })
            }
          }
          if (op.state) model.state = step
          break
        }
        case 'nack': {
          if (model.inflight.length === 0) break
          const picked = [...new Set(op.picks.map((p) => model.inflight[p % model.inflight.length]!))]
          await q.nack(picked.map((e) => ({ ...e.record, key: e.key! })))
          model.returnInflight(picked)
          break
        }
        case 'replay': {
          const chosen = model.dead
            .filter((d) => op.ids === undefined || op.ids.includes(d.entry.record.id))
            .sort((x, y) => (x.sortKey < y.sortKey ? -1 : 1))
          expect(await q.replayDeadletter(op.ids)).toEqual([...new Set(chosen.map((d) => d.entry.record.id))])
          model.dead = model.dead.filter((d) => !chosen.includes(d))
          for (const d of chosen) {
            model.unprocessed.push({ ord: model.ord++, record: { ...d.entry.record, pipeline: d.pipeline } })
          }
          break
        }
        case 'take': {
          const reused = op.reuse ? model.handing[0]?.handoffId : undefined
          // Zero-padded, so id order is take order (pendingHandoffs breaks ties by id).
          const handoffId = reused ?? `h${String(step).padStart(3, '0')}`
          const peer = step % 2 === 0 ? 'p1' : 'p2'
          const taking = q.takeForHandoff(op.max, { handoffId, peer, maxHops: op.maxHops, excludeOrigin: op.excludeOrigin })
          if (reused !== undefined) {
            await expect(taking).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
            break
          }
          const taken = model.take(op.max, op.maxHops, op.excludeOrigin)
          const batch = await taking
          if (taken.length === 0) expect(batch).toBeUndefined()
          else {
            const { texts, ...rest } = batch!
            if (texts !== undefined) expect(texts.map((t) => JSON.parse(t))).toEqual(rest.events)
            expect(rest).toEqual({ handoffId, peer, takenAt: now, events: taken.map((e) => e.record) })
            model.handing.push({ handoffId, peer, takenAt: now, entries: taken })
          }
          break
        }
        case 'complete':
        case 'return': {
          // One pick in four names a batch that is not pending: a no-op.
          const batch = op.pick % 4 === 3 ? undefined : model.handing[op.pick % Math.max(1, model.handing.length)]
          if (op.kind === 'complete') await q.completeHandoff(batch?.handoffId ?? 'unknown')
          else await q.returnHandoff(batch?.handoffId ?? 'unknown')
          if (batch === undefined) break
          model.handing = model.handing.filter((b) => b !== batch)
          if (op.kind === 'return') model.putBack(batch.entries)
          break
        }
        case 'tick':
          now += op.ms
          break
        case 'restart': {
          await q.close()
          q = await place.open(settings)
          // In flight goes back; handing off stays promised to its peer.
          if (backend.survivesRestart) model.returnInflight(model.inflight)
          else Object.assign(model, { unprocessed: [], inflight: [], handing: [], dead: [], seen: new Map(), state: undefined })
          break
        }
      }
      await check()
    }
    await drainAndCompare(q, model)
  } finally {
    await place.dispose()
  }
}

/** Every batch comes back; everything the model says is held must come out, once, in order. */
async function drainAndCompare(q: EventQueue, model: Model): Promise<void> {
  for (const batch of model.handing) await q.returnHandoff(batch.handoffId)
  model.putBack(model.handing.flatMap((b) => b.entries))
  model.handing = []
  const rest = await q.dequeue(1000)
  expect(rest.map(recordOf)).toEqual(model.unprocessed.map((e) => e.record))
  for (const e of [...rest, ...model.inflight.map((m) => ({ ...m.record, key: m.key! }))]) await q.ack(e)
  expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 0, handingOff: 0, bytes: 0 })
}

describe('queue against its model', () => {
  for (const backend of backends) {
    it(`${backend.name}: every accepted event stays in exactly one bucket`, async () => {
      await fc.assert(
        fc.asyncProperty(limitsArb, fc.array(opArb, { minLength: 1, maxLength: 40, size: 'medium' }), (caps, ops) =>
          runScenario(backend, caps, ops),
        ),
        { numRuns: backend.survivesRestart ? 60 : 300 },
      )
    })
  }
})
