// The queue against the LevelDB under it, in one process on the same disk:
//   - raw-leveldb-batch100: a loop of one chained batch of 100 puts of 1 KB events, synced;
//   - durable-enqueue100: a loop of DurableQueue.enqueue(100 events) (sync batch), one
//     call at a time, so the queue's own cost (dedupe lookup, index entries) shows;
//   - durable-enqueue100-x8: the same with 8 callers at once (group commit at work);
//   - durable-open-100k: open() of a 100,000 x 1 KB backlog, 1,000 of them in flight.
// Prints one plain line per figure. Env: BENCH_SECONDS per loop (default 3),
// BENCH_BACKLOG (default 100000). Data lives in temp dirs removed at the end.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Level } from 'level'
import { DurableQueue } from '../src/queue/index.js'
import { writeBatch } from '../src/queue/durable/write-batch.js'
import type { EventRecord } from '../src/queue/types.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 100_000)
const BATCH = 100
const PAD = 'x'.repeat(1024 - 120) // about 1 KB of JSON with the envelope fields

let next = 0
function events(n: number): EventRecord[] {
  return Array.from({ length: n }, () => ({
    id: `bench-${next++}`,
    origin: 'bench',
    receivedAt: Date.now(),
    hops: 0,
    data: { type: 'bench', pad: PAD },
  }))
}

function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `binge-bench-${name}-`))
}

/** Run `once` (which handles `perCall` events) back to back for SECONDS; events/s. */
async function rate(perCall: number, once: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + SECONDS * 1000
  const started = performance.now()
  let done = 0
  while (performance.now() < end) {
    await once()
    done += perCall
  }
  return Math.round(done / ((performance.now() - started) / 1000))
}

async function rawLeveldb(): Promise<number> {
  const dir = tempDir('raw')
  const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
  await db.open()
  let seq = 0
  try {
    // Chained, as the queue writes (write-batch.ts): the fastest way LevelDB takes a batch.
    return await rate(BATCH, () =>
      writeBatch(
        db,
        events(BATCH).map((e) => ({ type: 'put' as const, key: `u!${String(seq++).padStart(16, '0')}`, value: JSON.stringify(e) })),
        true,
      ),
    )
  } finally {
    await db.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function withQueue<T>(name: string, fn: (q: DurableQueue, dir: string) => Promise<T>): Promise<T> {
  const dir = tempDir(name)
  const q = new DurableQueue({ dir, sync: 'batch', maxEvents: 1e9, maxBytes: 2 ** 45, dedupeWindowMs: 600_000 })
  await q.open()
  try {
    return await fn(q, dir)
  } finally {
    await q.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function durableEnqueue(callers: number): Promise<number> {
  return withQueue('enqueue', (q) =>
    rate(BATCH * callers, () => Promise.all(Array.from({ length: callers }, () => q.enqueue(events(BATCH))))),
  )
}

async function durableOpen(): Promise<{ ms: number; requeued: number; unprocessed: number }> {
  const dir = tempDir('open')
  try {
    const fill = new DurableQueue({ dir, sync: 'none', maxEvents: 1e9, maxBytes: 2 ** 45, dedupeWindowMs: 600_000 })
    await fill.open()
    for (let n = 0; n < BACKLOG; n += 1000) await fill.enqueue(events(Math.min(1000, BACKLOG - n)))
    await fill.dequeue(1000)
    await fill.close()
    const q = new DurableQueue({ dir, sync: 'batch', maxEvents: 1e9, maxBytes: 2 ** 45, dedupeWindowMs: 600_000 })
    const started = performance.now()
    const report = await q.open()
    const ms = performance.now() - started
    await q.close()
    return { ms: Math.round(ms), requeued: report.requeued, unprocessed: report.unprocessed }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const raw = await rawLeveldb()
console.log(`raw-leveldb-batch100: ${raw} events/s`)
const one = await durableEnqueue(1)
console.log(`durable-enqueue100: ${one} events/s (${Math.round((one / raw) * 100)}% of raw)`)
const eight = await durableEnqueue(8)
console.log(`durable-enqueue100-x8: ${eight} events/s (${Math.round((eight / raw) * 100)}% of raw)`)
const opened = await durableOpen()
console.log(`durable-open-${BACKLOG / 1000}k: ${opened.ms} ms (requeued ${opened.requeued}, unprocessed ${opened.unprocessed})`)
