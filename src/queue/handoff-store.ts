// The durable handing-off bucket (layout: keys.ts): finding the newest events a handoff
// may take, the ops that move a batch in and out, and the scan that finds the pending
// batches again at open.
// Invariants: a batch moves in one atomic batch each way (a del + put per event, plus
// its header), and its events keep their queue keys, so after any crash each event is
// either unprocessed in its old place or in its batch, never both and never neither.

import type { Level } from 'level'
import { BingeError } from '../errors.js'
import { type HeldBatch, eligible } from './handoff-book.js'
import * as k from './keys.js'
import type { EventRecord, TakeForHandoffOptions } from './types.js'

type Db = Level<string, string>

const CHUNK = 2000

interface Header {
  peer: string
  takenAt: number
}

export interface Found {
  /** Queue key. */
  key: string
  json: string
  record: EventRecord
}

/**
 * Up to `limit` of the newest eligible events of `range`, in queue order. Reads newest
 * first, a chunk at a time, and stops once it has enough; events it may not take (too
 * many hops) are read past each time, which is what keeps them here.
 */
export async function findNewest(db: Db, range: k.Range, limit: number, options: TakeForHandoffOptions): Promise<Found[]> {
  const found: Found[] = []
  const it = db.iterator({ ...range, reverse: true, highWaterMarkBytes: k.READ_AHEAD })
  try {
    while (found.length < limit) {
      const chunk = await it.nextv(Math.min(CHUNK, Math.max(64, limit - found.length)))
      if (chunk.length === 0) break
      for (const [dbKey, json] of chunk) {
        const record = eligible(json, options)
        if (record === undefined) continue
        found.push({ key: k.queueKeyOf(dbKey), json, record })
        if (found.length === limit) break
      }
    }
  } finally {
    await it.close()
  }
  return found.reverse()
}

/** Move found unprocessed events into a new batch. */
export function takeOps(handoffId: string, header: Header, found: Found[]): k.Op[] {
  const ops: k.Op[] = [{ type: 'put', key: k.handoffHeaderKey(handoffId), value: JSON.stringify(header) }]
  for (const f of found) {
    ops.push({ type: 'del', key: k.unprocessedKey(f.key) }, { type: 'put', key: k.handoffEventKey(handoffId, f.key), value: f.json })
  }
  return ops
}

/** The stored events of a batch, in its order. */
export async function readBatch(db: Db, batch: HeldBatch<unknown>): Promise<string[]> {
  const values = await db.getMany(batch.keys.map((key) => k.handoffEventKey(batch.handoffId, key)))
  const missing = values.findIndex((v) => v === undefined)
  if (missing >= 0) {
    throw new BingeError('BINGE_INTERNAL', `handoff ${batch.handoffId} lost event ${batch.keys[missing]} from the store`)
  }
  return values as string[]
}

export function completeOps(batch: HeldBatch<unknown>): k.Op[] {
  return [
    { type: 'del', key: k.handoffHeaderKey(batch.handoffId) },
    ...batch.keys.map((key): k.Op => ({ type: 'del', key: k.handoffEventKey(batch.handoffId, key) })),
  ]
}

/** Put a batch's events back under their own queue keys. */
export function returnOps(batch: HeldBatch<unknown>, values: string[]): k.Op[] {
  const ops: k.Op[] = [{ type: 'del', key: k.handoffHeaderKey(batch.handoffId) }]
  batch.keys.forEach((key, i) => {
    ops.push({ type: 'del', key: k.handoffEventKey(batch.handoffId, key) }, { type: 'put', key: k.unprocessedKey(key), value: values[i]! })
  })
  return ops
}

export interface ScannedHandoffs {
  /** Values are each event's bytes. */
  batches: Array<HeldBatch<number>>
  events: number
  bytes: number
  /** One past the largest queue key in the bucket (0 when empty). */
  nextSeq: number
}

/** Every pending batch, read once in key order (a batch's header comes before its events). */
export async function scanHandoffs(db: Db): Promise<ScannedHandoffs> {
  const scanned: ScannedHandoffs = { batches: [], events: 0, bytes: 0, nextSeq: 0 }
  let current: HeldBatch<number> | undefined
  const it = db.iterator({ ...k.ranges.handingOff, highWaterMarkBytes: k.READ_AHEAD })
  try {
    for (let chunk = await it.nextv(CHUNK); chunk.length > 0; chunk = await it.nextv(CHUNK)) {
      for (const [dbKey, value] of chunk) {
        const { handoffId, queueKey } = k.parseHandoffKey(dbKey)
        if (current?.handoffId !== handoffId) {
          // A header is written in the same batch as its events; were it ever missing,
          // the batch still counts, and with no peer it is one the mesh takes back.
          current = { handoffId, peer: '', takenAt: 0, keys: [], values: [] }
          scanned.batches.push(current)
        }
        if (queueKey === '') {
          const header = JSON.parse(value) as Header
          current.peer = header.peer
          current.takenAt = header.takenAt
          continue
        }
        const bytes = Buffer.byteLength(value)
        current.keys.push(queueKey)
        current.values.push(bytes)
        scanned.events++
        scanned.bytes += bytes
        scanned.nextSeq = Math.max(scanned.nextSeq, Number(queueKey) + 1)
      }
    }
  } finally {
    await it.close()
  }
  return scanned
}
