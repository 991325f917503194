// Enqueue groups written at once (src/queue/durable/pending-groups.ts): a group's events
// become visible only once every group planned before it has settled, so a dequeue
// cursor that only moves forward never passes a key that shows up later; a failed group
// is skipped; a group planning an id an unsettled group holds waits for its outcome.
// Then a real durable queue in `sync: always`, where several writes are in flight:
// enqueues in parallel with dequeues, every event dequeued exactly once, the hard cap
// counting what is still being written, and a keyed resend stored once. (Which write
// LevelDB finishes first is up to its threads, so the ordering rule itself is pinned by
// the first test.)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PendingGroups } from '../../src/queue/durable/pending-groups.js'
import { DurableQueue } from '../../src/queue/index.js'
import { event } from './backends.js'

const stored = (...jsons: string[]) => jsons.map((json) => ({ json, bytes: json.length }))

describe('PendingGroups', () => {
  it('shows groups in planning order, whatever order their writes finish in', () => {
    const groups = new PendingGroups()
    const first = groups.push({ from: 0, added: 3, addedBytes: 30, ids: new Set(), stored: stored('a', 'b', 'c') })
    const second = groups.push({ from: 3, added: 2, addedBytes: 20, ids: new Set(), stored: stored('d', 'e') })
    const third = groups.push({ from: 5, added: 1, addedBytes: 10, ids: new Set(), stored: stored('f') })
    expect(groups.visibleSeq(6)).toBe(0)
    expect(groups.coming()).toEqual({ events: 6, bytes: 60 })
    // The second finishes first: nothing is visible yet, reads still stop at 0.
    expect(second(false)).toBeUndefined()
    expect(groups.visibleSeq(6)).toBe(0)
    // The first fails: it is dropped uncounted, and the second shows, with its events
    // from its first number (the failed group's numbers are skipped).
    expect(first(true)).toEqual({ events: 2, bytes: 20, groups: [{ from: 3, stored: stored('d', 'e') }] })
    expect(groups.visibleSeq(6)).toBe(5)
    expect(third(false)).toEqual({ events: 1, bytes: 10, groups: [{ from: 5, stored: stored('f') }] })
    expect(groups.visibleSeq(6)).toBe(6)
    expect(groups.coming()).toEqual({ events: 0, bytes: 0 })
  })

  it('makes a group that plans an id still being written wait for that write', async () => {
    const groups = new PendingGroups()
    const settle = groups.push({ from: 0, added: 1, addedBytes: 1, ids: new Set(['k-1']) })
    let waited = false
    const waiting = groups.waitFor(['k-1']).then(() => {
      waited = true
    })
    await groups.waitFor(['other'])
    await Promise.resolve()
    expect(waited).toBe(false)
    settle(false)
    await waiting
    expect(waited).toBe(true)
  })
})

describe('durable queue with groups in flight', () => {
  const dirs: string[] = []
  const queues: DurableQueue[] = []
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.close()
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
  })

  async function open(maxEvents = 1e6): Promise<DurableQueue> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-pending-'))
    dirs.push(dir)
    const q = new DurableQueue({ dir, sync: 'always', maxEvents, maxBytes: 1 << 30, dedupeWindowMs: 60_000 })
    queues.push(q)
    await q.open()
    return q
  }

  it('dequeues every event of concurrent enqueues exactly once while they are written', async () => {
    const q = await open()
    const total = 400
    const seen = new Map<string, number>()
    let enqueued = false
    const consumer = (async () => {
      while (!enqueued || q.depth().unprocessed > 0) {
        const batch = await q.dequeue(7)
        for (const e of batch) seen.set(e.id, (seen.get(e.id) ?? 0) + 1)
        if (batch.length > 0)
          await q.ackBatch(
            batch,
            batch.map(() => ({})),
          )
        else await new Promise((resolve) => setImmediate(resolve))
      }
    })()
    // sync: always writes every call alone, so several are in flight at once.
    await Promise.all(Array.from({ length: total }, (_, i) => q.enqueue([event(`e${i}`)])))
    enqueued = true
    await consumer
    expect(seen.size).toBe(total)
    expect([...seen.values()].every((n) => n === 1)).toBe(true)
    expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 0 })
  })

  it('counts what is still being written against the hard cap', async () => {
    const q = await open(10)
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => q.enqueue([event(`c${i}`)])))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10)
    expect(q.depth().unprocessed).toBe(10)
  })

  it('answers a keyed resend sent while its first copy is written as a duplicate, stored once', async () => {
    const q = await open()
    const [first, again] = await Promise.all([q.enqueue([event('same')]), q.enqueue([event('same')])])
    expect([first[0]!.duplicate, again[0]!.duplicate].sort()).toEqual([false, true])
    expect(q.depth().unprocessed).toBe(1)
  })
})
