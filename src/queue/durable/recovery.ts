// Opening the durable store after a clean stop or a crash: an in-flight event never
// left its unprocessed key (workers hold it in memory only), so it is simply there to
// process again; a store last written by an older version may hold in-flight copies
// (f!), which go back to unprocessed (same key, so same place in the order). Find the batches still
// handing off (they stay there: their peer may hold them already, so they are resent,
// never processed here), and rebuild the exact in-memory counters and the next
// sequence number from what is on disk.
// Invariants: each move is a del + put in one batch, so a crash during recovery leaves
// every event in exactly one bucket and the next open simply finishes the job. The
// move needs no fsync: if it is lost, the events are still in-flight and move again.
// It must be fast (100k events in well under 2 s): entries are read in chunks of
// thousands with nextv and a read-ahead big enough to fill them (classic-level's
// default of 16 KB would mean a native round trip per ~16 events), no await per entry.
// Values come as strings: measured faster than as byte views, and byteLength of a
// one-byte string is cheap.

import type { Level } from 'level'
import { BingeError } from '../../errors.js'
import type { HeldBatch } from '../handoff-book.js'
import { migrateLayout1, scanHandoffs } from './handoff-store.js'
import {
  type Op,
  READ_AHEAD,
  batchEntriesSeqKey,
  handoffHeaderKey,
  inflightKey,
  metaKey,
  nextSeqKey,
  queueKeyOf,
  ranges,
  unprocessedKey,
} from './keys.js'
import { writeBatch } from './write-batch.js'

type Db = Level<string, string>

const CHUNK = 2000
/** 2: a handoff batch is a header listing its events' keys; they stay unprocessed (handoff-store.ts). */
const FORMAT = '2'

export interface Recovered {
  requeued: number
  unprocessed: number
  deadletter: number
  /** Pending handoff batches; each value is one event's bytes. */
  handoffs: Array<HeldBatch<number>>
  handingOff: number
  /** Bytes of unprocessed and handing-off events. */
  bytes: number
  /** First sequence number not used by any queued event. */
  nextSeq: number
}

export async function recover(db: Db): Promise<Recovered> {
  const requeued = await requeueInflight(db)
  const headers = await scanHandoffs(db)
  const held = new Map<string, number>()
  for (const { header } of headers) for (const key of header.keys) held.set(key, 0)
  const scan = await scanUnprocessed(db, held)
  const deadletter = await countKeys(db, ranges.deadletter)
  // Past every key ever handed out, not just past those still queued: dead letters
  // carry their queue key, so a reused one could collide with an older dead letter.
  const persisted = Number((await db.get(nextSeqKey)) ?? 0)
  const nextSeq = Math.max(scan.nextSeq, Number.isSafeInteger(persisted) ? persisted : 0)
  const handoffs = headers.map(
    ({ handoffId, header }): HeldBatch<number> => ({
      handoffId,
      peer: header.peer,
      takenAt: header.takenAt,
      keys: header.keys,
      values: header.keys.map((key) => held.get(key)!),
    }),
  )
  return {
    requeued,
    unprocessed: scan.count,
    deadletter,
    handoffs,
    handingOff: held.size,
    bytes: scan.bytes,
    nextSeq,
  }
}

/**
 * Stamp a new store with the layout version, bring one of layout 1 to 2 (one atomic
 * batch), and refuse one written in a layout this version does not know.
 */
export async function checkFormat(db: Db): Promise<{ created: boolean }> {
  const format = await db.get(metaKey('format'))
  if (format === undefined) {
    await db.put(metaKey('format'), FORMAT, { sync: true })
    return { created: true }
  }
  if (format === '1') {
    const ops = await migrateLayout1(db)
    await writeBatch(db, [...ops, { type: 'put', key: metaKey('format'), value: FORMAT }], true)
  } else if (format !== FORMAT) {
    throw new BingeError('BINGE_INTERNAL', `queue in ${db.location} has unknown layout ${format}`)
  }
  return { created: false }
}

/**
 * Since when this store remembers a handed-in batch by one entry (EnqueueOptions.batch)
 * instead of one per event: 0 for a store created so, else the first open by a version
 * that does, and again the first open after an older version wrote to the store (a
 * rollback: `next-seq` moved without its mirror, batchEntriesSeqKey). Until a dedupe
 * window after it the index may hold an entry per event of a batch whose resend is
 * still to come, so those ids are looked up too.
 */
async function batchEntriesSince(db: Db, created: boolean, now: number): Promise<number> {
  const key = metaKey('batch-entries-since')
  const [mark, seq, mirror] = await db.getMany([key, nextSeqKey, batchEntriesSeqKey])
  if (mark !== undefined && mirror === seq) return Number(mark)
  const since = created ? 0 : now
  const ops: Op[] = [{ type: 'put', key, value: String(since) }]
  if (seq !== undefined) ops.push({ type: 'put', key: batchEntriesSeqKey, value: seq })
  await writeBatch(db, ops, true)
  return since
}

export interface Reconciled {
  /** Free unprocessed events. */
  unprocessed: number
  /** Bytes of every event under an unprocessed key: free, in flight or handing off. */
  bytes: number
  nextSeq: number
  /** In-flight copies (f!, written before layout 3) no worker held, moved back to unprocessed. */
  requeued: number
  /** Handoff headers no pending batch owned, deleted (their batch was never sent). */
  orphans: number
}

/**
 * After the store was reopened under a running queue (store-health.ts): what is on disk
 * is every write that succeeded, and maybe one that was reported failed (a sync whose
 * outcome is unknown, or a write that overlapped the fault). Keep what memory knows
 * (the in-flight events workers hold, the batches promised to peers), put back what it
 * does not (an in-flight event no worker holds, a header of a batch never sent), and
 * recount the rest from disk. The caller holds every lock that moves events.
 */
export async function reconcile(
  db: Db,
  inflight: ReadonlyMap<string, number>,
  pending: Array<HeldBatch<number>>,
  nextSeq: number,
): Promise<Reconciled> {
  const held = new Map<string, number>()
  for (const key of inflight.keys()) held.set(key, 0)
  // Only a store last written by layout 2 holds in-flight copies (f!), and open moved
  // them back; any found now are no worker's.
  const requeued = await requeueInflight(db, (key) => !held.has(key))
  const known = new Set(pending.map((b) => b.handoffId))
  const orphans = (await scanHandoffs(db)).filter((h) => !known.has(h.handoffId))
  if (orphans.length > 0)
    await writeBatch(
      db,
      orphans.map((h) => ({ type: 'del' as const, key: handoffHeaderKey(h.handoffId) })),
      false,
    )
  for (const batch of pending) for (const key of batch.keys) held.set(key, 0)
  const scan = await scanUnprocessed(db, held)
  // A worker's event whose ack was reported failed yet written is gone from disk: its
  // bytes still count until the worker acks it again (which subtracts them).
  let bytes = scan.bytes
  for (const [key, size] of inflight) if (held.get(key) === 0) bytes += size
  return { unprocessed: scan.count, bytes, nextSeq: Math.max(nextSeq, scan.nextSeq), requeued, orphans: orphans.length }
}

async function requeueInflight(db: Db, unclaimed: (queueKey: string) => boolean = () => true): Promise<number> {
  const ops: Op[] = []
  const it = db.iterator({ ...ranges.inflight, highWaterMarkBytes: READ_AHEAD })
  try {
    for (let chunk = await it.nextv(CHUNK); chunk.length > 0; chunk = await it.nextv(CHUNK)) {
      for (const [key, value] of chunk) {
        const queueKey = queueKeyOf(key)
        if (!unclaimed(queueKey)) continue
        ops.push({ type: 'del', key: inflightKey(queueKey) }, { type: 'put', key: unprocessedKey(queueKey), value })
      }
    }
  } finally {
    await it.close()
  }
  if (ops.length > 0) await writeBatch(db, ops, false)
  return ops.length / 2
}

/**
 * Count the free unprocessed events, and the bytes of all of them; fills in the bytes
 * of each held one (`held`, by queue key), which is not counted.
 */
async function scanUnprocessed(db: Db, held: Map<string, number>): Promise<{ count: number; bytes: number; nextSeq: number }> {
  let count = 0
  let bytes = 0
  let last: string | undefined
  const it = db.iterator({ ...ranges.unprocessed, highWaterMarkBytes: READ_AHEAD })
  try {
    for (let chunk = await it.nextv(CHUNK); chunk.length > 0; chunk = await it.nextv(CHUNK)) {
      count += chunk.length
      for (const [key, value] of chunk) {
        const size = Buffer.byteLength(value)
        bytes += size
        if (held.size > 0 && held.has(queueKeyOf(key))) {
          held.set(queueKeyOf(key), size)
          count--
        }
      }
      last = chunk[chunk.length - 1]![0]
    }
  } finally {
    await it.close()
  }
  return { count, bytes, nextSeq: last === undefined ? 0 : Number(queueKeyOf(last)) + 1 }
}

async function countKeys(db: Db, range: { gte: string; lt: string }): Promise<number> {
  let count = 0
  const it = db.keys({ ...range, highWaterMarkBytes: READ_AHEAD })
  try {
    for (let chunk = await it.nextv(CHUNK); chunk.length > 0; chunk = await it.nextv(CHUNK)) {
      count += chunk.length
    }
  } finally {
    await it.close()
  }
  return count
}

/**
 * Check the layout at open (checkFormat); returns until when ids binge made are looked
 * up in handed-in batches too (batchEntriesSince; 0: never).
 */
export async function openLayout(db: Db, now: number, dedupeWindowMs: number): Promise<number> {
  const { created } = await checkFormat(db)
  const since = await batchEntriesSince(db, created, now)
  return since === 0 ? 0 : since + dedupeWindowMs
}
