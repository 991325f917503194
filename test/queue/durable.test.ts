// What only the durable queue promises: group commit shares fsyncs, a handoff batch is
// fsync'd before it is sent, and what it held (order, dedupe index, dead letters,
// handoff batches, sequence) is still there after a restart.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Level } from 'level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DurableQueue, type DurableQueueOptions, MemoryQueue, createQueue } from '../../src/queue/index.js'
import { uuidv7 } from '../../src/ids.js'
import { event } from './backends.js'
import { waitFor } from '../support/node-process.js'

let dir: string
const opened: DurableQueue[] = []

async function open(options: Partial<DurableQueueOptions> = {}): Promise<DurableQueue> {
  const q = new DurableQueue({ dir, sync: 'batch', maxEvents: 1e6, maxBytes: 1 << 30, dedupeWindowMs: 60_000, ...options })
  opened.push(q)
  await q.open()
  return q
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-durable-'))
})
afterEach(async () => {
  for (const q of opened.splice(0)) await q.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe('group commit', () => {
  it('lets 50 concurrent enqueues share a few fsyncs', async () => {
    const q = await open({ sync: 'batch' })
    const calls = Array.from({ length: 50 }, (_, i) => q.enqueue([event(`e${i}`)]))
    expect((await Promise.all(calls)).flat().every((r) => !r.duplicate)).toBe(true)
    expect(q.stats().enqueueCalls).toBe(50)
    expect(q.stats().enqueueWrites).toBeLessThanOrEqual(3)
    expect(q.stats().syncWrites).toBe(q.stats().enqueueWrites)
  })

  it('gathers calls that arrive while a write is in progress into the next one', async () => {
    const q = await open({ sync: 'batch' })
    const first = q.enqueue([event('first')])
    await new Promise((resolve) => setImmediate(resolve))
    const rest = Array.from({ length: 49 }, (_, i) => q.enqueue([event(`e${i}`)]))
    await Promise.all([first, ...rest])
    expect(q.stats().enqueueWrites).toBeLessThanOrEqual(3)
    expect(q.depth().unprocessed).toBe(50)
  })

  it("gives every call its own fsync with sync 'always', and none with 'none'", async () => {
    const always = await open({ sync: 'always' })
    await Promise.all(Array.from({ length: 10 }, (_, i) => always.enqueue([event(`e${i}`)])))
    expect(always.stats()).toMatchObject({ enqueueWrites: 10, syncWrites: 10 })
    await always.close()
    const none = await open({ sync: 'none' })
    await Promise.all(Array.from({ length: 10 }, (_, i) => none.enqueue([event(`f${i}`)])))
    expect(none.stats().syncWrites).toBe(0)
    expect(none.stats().enqueueWrites).toBeLessThanOrEqual(3)
  })

  it('writes nothing for a call of duplicates only', async () => {
    const q = await open()
    await q.enqueue([event('a')])
    const writes = q.stats().writes
    await q.enqueue([event('a')])
    expect(q.stats().writes).toBe(writes)
  })
})

describe('power-cut bound', () => {
  it('follows unsynced moves and acks with one fsync within ackSyncMs, and none in sync none', async () => {
    const q = await open({ sync: 'batch', ackSyncMs: 50 })
    await q.enqueue(['a', 'b', 'c'].map((id) => event(id)))
    const afterEnqueue = q.stats().syncWrites
    const taken = await q.dequeue(3)
    for (const e of taken) await q.ack(e)
    // Four unsynced writes (one move, three acks) share one forced fsync.
    expect(q.stats().syncWrites).toBe(afterEnqueue)
    await waitFor(() => q.stats().syncWrites === afterEnqueue + 1, { timeoutMs: 10_000, what: 'the lazy fsync' })
    // Nothing unsynced since: no further fsync, however long it waits (polled a while).
    const until = Date.now() + 300
    while (Date.now() < until) {
      expect(q.stats().syncWrites).toBe(afterEnqueue + 1)
      await new Promise((r) => setTimeout(r, 25))
    }
    await q.close()
    const none = await open({ sync: 'none', ackSyncMs: 50 })
    await none.enqueue([event('x')])
    for (const e of await none.dequeue(1)) await none.ack(e)
    const until2 = Date.now() + 300
    while (Date.now() < until2) {
      expect(none.stats().syncWrites).toBe(0)
      await new Promise((r) => setTimeout(r, 25))
    }
  })
})

describe('handoff', () => {
  const take = (q: DurableQueue, handoffId: string) => q.takeForHandoff(2, { handoffId, peer: 'p', maxHops: 1 })

  it('writes a taken batch with the configured sync, and finishes it without fsync', async () => {
    const q = await open({ sync: 'batch' })
    await q.enqueue(['a', 'b', 'c', 'd'].map((id) => event(id)))
    const before = q.stats()
    await take(q, 'h1')
    await take(q, 'h2')
    expect(q.stats().syncWrites - before.syncWrites).toBe(2)
    await q.completeHandoff('h1')
    await q.returnHandoff('h2')
    expect(q.stats().syncWrites - before.syncWrites).toBe(2)
    expect(q.stats().writes - before.writes).toBe(4)
    await q.close()
    const none = await open({ sync: 'none' })
    await take(none, 'h3')
    expect(none.stats().syncWrites).toBe(0)
  })

  it('reports the events still handing off at open, and never reuses their keys', async () => {
    const q = await open()
    await q.enqueue(['a', 'b', 'c'].map((id) => event(id)))
    await q.dequeue(1)
    await take(q, 'h1')
    await q.close()
    const again = new DurableQueue({ dir, sync: 'batch', maxEvents: 10, maxBytes: 1e6, dedupeWindowMs: 1000 })
    opened.push(again)
    expect(await again.open()).toMatchObject({ requeued: 0, unprocessed: 1, handingOff: 2 })
    await again.enqueue([event('d')])
    await again.returnHandoff('h1')
    // d under a key of the batch would have been overwritten by the return.
    expect((await again.dequeue(10)).map((e) => e.id)).toEqual(['a', 'b', 'c', 'd'])
  })

  it('holds a batch by one small header: the events are not written again', async () => {
    const q = await open()
    const pad = 'x'.repeat(4000)
    await q.enqueue(['a', 'b', 'c'].map((id) => event(id, { data: { pad } })))
    await q.takeForHandoff(3, { handoffId: 'h1', peer: 'p', maxHops: 1 })
    await q.close()
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    const bucket = await db.iterator({ gte: 'h!', lt: 'h"' }).all()
    await db.close()
    expect(bucket).toHaveLength(1)
    expect(bucket[0]![1].length).toBeLessThan(200)
    expect(JSON.parse(bucket[0]![1])).toMatchObject({ peer: 'p', keys: expect.any(Array) })
  })

  it('takes the newest events past held ones and over many completed batches, and dequeue passes held ones by', async () => {
    const q = await open({ sync: 'none' })
    await q.enqueue(Array.from({ length: 300 }, (_, i) => event(`e${i}`)))
    const ids = async (handoffId: string, max: number) =>
      (await q.takeForHandoff(max, { handoffId, peer: 'p', maxHops: 1 }))?.events.map((e) => e.id) ?? []
    expect(await ids('h0', 10)).toEqual(Array.from({ length: 10 }, (_, i) => `e${290 + i}`))
    for (let n = 1; n <= 20; n++) {
      expect(await ids(`h${n}`, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `e${290 - 10 * n + i}`))
      await q.completeHandoff(`h${n}`)
    }
    // New events are newer than every covered span.
    await q.enqueue([event('late')])
    expect(await ids('h21', 2)).toEqual(['e89', 'late'])
    // A returned batch is free again: taken again first, being the newest.
    await q.returnHandoff('h0')
    expect(await ids('h22', 3)).toEqual(['e297', 'e298', 'e299'])
    expect(q.depth()).toMatchObject({ unprocessed: 89 + 7, handingOff: 2 + 3 })
    const all = await q.dequeue(1000)
    expect(all.map((e) => e.id)).toEqual([
      ...Array.from({ length: 89 }, (_, i) => `e${i}`),
      ...Array.from({ length: 7 }, (_, i) => `e${290 + i}`),
    ])
  })

  it('never takes an event twice when a batch completes while the next take reads', async () => {
    const q = await open()
    await q.enqueue(Array.from({ length: 400 }, (_, i) => event(`e${i}`, { origin: i % 3 === 0 ? 'b' : 'a' })))
    const taken: string[] = []
    let previous = (await q.takeForHandoff(10, { handoffId: 'h0', peer: 'p', maxHops: 1, excludeOrigin: 'b' }))!
    taken.push(...previous.events.map((e) => e.id))
    for (let n = 1; n < 40; n++) {
      // Either may start first; both orders, every other round.
      const take = () => q.takeForHandoff(5, { handoffId: `h${n}`, peer: 'p', maxHops: 1, excludeOrigin: 'b' })
      const complete = () => q.completeHandoff(previous.handoffId)
      const batch = n % 2 === 0 ? (await Promise.all([complete(), take()]))[1] : (await Promise.all([take(), complete()]))[0]
      taken.push(...batch!.events.map((e) => e.id))
      previous = batch!
    }
    expect(new Set(taken).size).toBe(taken.length)
    expect(taken).toHaveLength(10 + 39 * 5)
    expect(q.depth()).toMatchObject({ unprocessed: 400 - taken.length, handingOff: 5 })
  })

  it('opens a store of layout 1 (events moved into the bucket) and resends its batches', async () => {
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    const json = (id: string) => JSON.stringify(event(id))
    const key = (n: number) => String(n).padStart(16, '0')
    await db.batch([
      { type: 'put', key: 'm!format', value: '1' },
      { type: 'put', key: 'm!next-seq', value: '3' },
      { type: 'put', key: `u!${key(0)}`, value: json('a') },
      { type: 'put', key: 'h!old\u0000', value: JSON.stringify({ peer: 'p', takenAt: 5 }) },
      { type: 'put', key: `h!old\u0000${key(1)}`, value: json('b') },
      { type: 'put', key: `h!old\u0000${key(2)}`, value: json('c') },
    ])
    await db.close()
    const q = await open()
    expect(q.depth()).toMatchObject({ unprocessed: 1, handingOff: 2 })
    expect((await q.pendingHandoffs()).map((b) => [b.handoffId, b.peer, b.events.map((e) => e.id)])).toEqual([['old', 'p', ['b', 'c']]])
    expect((await q.dequeue(10)).map((e) => e.id)).toEqual(['a'])
    await q.returnHandoff('old')
    expect((await q.dequeue(10)).map((e) => e.id)).toEqual(['b', 'c'])
    await q.close()
    const again = await open()
    expect(again.depth()).toMatchObject({ unprocessed: 3, handingOff: 0 })
  })
})

describe('restart', () => {
  it('reports what it recovered and keeps order, dedupe and dead letters', async () => {
    const q = await open()
    await q.enqueue(['a', 'b', 'c', 'd'].map((id) => event(id)))
    const [a, b] = await q.dequeue(3)
    await q.ack(a!, { deadletter: [{ pipeline: 'p', error: 'boom', attempts: 2 }] })
    void b
    await q.close()
    const again = await open()
    expect(again.depth()).toMatchObject({ unprocessed: 3, inflight: 0, deadletter: 1 })
    expect((await again.listDeadletter())[0]).toMatchObject({ event: { id: 'a' }, pipeline: 'p', error: 'boom', attempts: 2 })
    expect(await again.enqueue([event('a'), event('e')])).toEqual([
      { id: 'a', duplicate: true },
      { id: 'e', duplicate: false },
    ])
    expect((await again.dequeue(10)).map((e) => e.id)).toEqual(['b', 'c', 'd', 'e'])
  })

  it('returns the counts of its recovery; an in-flight event never left its place, so it is simply unprocessed again', async () => {
    const q = await open()
    await q.enqueue(['a', 'b', 'c'].map((id) => event(id)))
    const writes = q.stats().writes
    expect((await q.dequeue(2)).map((e) => e.id)).toEqual(['a', 'b'])
    // A dequeue writes nothing: the events stay under their unprocessed keys.
    expect(q.stats().writes).toBe(writes)
    await q.close()
    const again = new DurableQueue({ dir, sync: 'batch', maxEvents: 10, maxBytes: 1e6, dedupeWindowMs: 1000 })
    opened.push(again)
    const report = await again.open()
    expect(report).toMatchObject({ requeued: 0, unprocessed: 3 })
    expect(report.durationMs).toBeGreaterThanOrEqual(0)
    expect((await again.dequeue(10)).map((e) => e.id)).toEqual(['a', 'b', 'c'])
  })

  it('moves in-flight copies an older version left (f!SEQ) back to their place at open', async () => {
    const q = await open()
    await q.enqueue(['a', 'b', 'c'].map((id) => event(id)))
    const [a] = await q.dequeue(1)
    await q.close()
    // What layout 2 wrote on dequeue: the event moved from u!SEQ to f!SEQ.
    const db = new Level<string, string>(dir)
    const value = (await db.get(`u!${a!.key}`))!
    await db.batch([
      { type: 'del', key: `u!${a!.key}` },
      { type: 'put', key: `f!${a!.key}`, value },
    ])
    await db.close()
    const again = await open()
    expect(again.depth()).toMatchObject({ unprocessed: 3, inflight: 0 })
    expect((await again.dequeue(10)).map((e) => e.id)).toEqual(['a', 'b', 'c'])
  })

  it('never reuses a queue key, even once every event is gone', async () => {
    const q = await open()
    await q.enqueue([event('a')])
    const [a] = await q.dequeue(1)
    await q.ack(a!, { deadletter: [{ pipeline: 'p', error: 'x', attempts: 1 }] })
    await q.close()
    const again = await open()
    await again.enqueue([event('b')])
    const [b] = await again.dequeue(1)
    expect(b!.key > a!.key).toBe(true)
  })

  it('refuses a second queue on a directory in use', async () => {
    await open()
    await expect(open()).rejects.toThrow()
  })
})

describe('dedupe sweep', () => {
  it('removes expired entries by time range, chunk after chunk', async () => {
    let now = 1_000
    const q = await open({ dedupeWindowMs: 100, now: () => now, sync: 'none' })
    await q.enqueue(Array.from({ length: 2000 }, (_, i) => event(`big-${i}`)))
    // One time-ordered entry per group: 250 groups take more than one sweep chunk.
    for (let i = 0; i < 250; i++) await q.enqueue([event(`id-${i}`)])
    now = 1_050
    await q.enqueue([event('late')])
    now = 1_120
    expect(await q.sweepDedupe()).toBe(2250)
    expect(await q.sweepDedupe()).toBe(0)
    expect(await q.enqueue([event('id-7'), event('late')])).toEqual([
      { id: 'id-7', duplicate: false },
      { id: 'late', duplicate: true },
    ])
  })
})

describe('batch entries (EnqueueOptions.batch)', () => {
  it('a store opened first by a version before them looks up ids binge made for one dedupe window, as its old entries may be resent', async () => {
    let now = 1_000
    const made = uuidv7()
    // As an older version left it: an entry per handed-in event, no batch-entries mark.
    let q = await open({ dedupeWindowMs: 500, now: () => now })
    await q.remember([made])
    await q.close()
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    await db.del('m!batch-entries-since')
    await db.close()
    now = 1_100
    q = await open({ dedupeWindowMs: 500, now: () => now })
    // The batch an old receiver stored comes again under a new version: still a duplicate.
    expect(await q.enqueue([event(made)], { batch: 'peer-a\u0000h1' })).toEqual([{ id: made, duplicate: true }])
    await q.close()
    now = 1_650
    q = await open({ dedupeWindowMs: 500, now: () => now })
    // A window after this store's first such open no old entry can matter: not looked up.
    expect(await q.remember([made])).toBeUndefined()
    expect(await q.enqueue([event(made)], { batch: 'peer-a\u0000h2' })).toEqual([{ id: made, duplicate: false }])
  })

  it('after an older version wrote to the store (a rollback), the next open looks them up for one window again', async () => {
    let now = 1_000
    const made = uuidv7()
    let q = await open({ dedupeWindowMs: 500, now: () => now })
    await q.enqueue([event('before')])
    await q.close()
    // The older version takes a batch: its event, an entry for the made id, and next-seq without its mirror.
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
    const seq = Number(await db.get('m!next-seq'))
    await db.batch([
      { type: 'put', key: `u!${String(seq).padStart(16, '0')}`, value: JSON.stringify({ ...event(made), data: { n: 1 } }) },
      { type: 'put', key: `x!${made}`, value: '1000' },
      { type: 'put', key: 'm!next-seq', value: String(seq + 1) },
    ])
    await db.close()
    now = 1_100
    q = await open({ dedupeWindowMs: 500, now: () => now })
    // Upgraded again, the batch's resend comes: still a duplicate.
    expect(await q.enqueue([event(made)], { batch: 'peer-a\u0000h1' })).toEqual([{ id: made, duplicate: true }])
    expect(q.depth().unprocessed).toBe(2)
  })

  it('a store created by this version never looks them up', async () => {
    const q = await open()
    const made = uuidv7()
    await q.remember([made])
    expect(await q.enqueue([event(made)], { batch: 'peer-a\u0000h1' })).toEqual([{ id: made, duplicate: false }])
  })
})

describe('createQueue', () => {
  it('builds the backend its mode names', async () => {
    const limits = { maxEvents: 10, maxBytes: 1000, dedupeWindowMs: 1000 }
    expect(createQueue({ mode: 'memory', ...limits })).toBeInstanceOf(MemoryQueue)
    const q = createQueue({ mode: 'durable', dir, sync: 'batch', ...limits })
    expect(q).toBeInstanceOf(DurableQueue)
    expect(q.mode).toBe('durable')
  })
})
