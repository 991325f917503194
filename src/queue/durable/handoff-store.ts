// The durable handing-off bucket (layout: keys.ts): finding the newest events a handoff
// may take, the ops that hold a batch and let it go, and the scan that finds the
// pending batches again at open.
//
// A batch is one header, `h!ID NUL` -> { peer, takenAt, keys }; its events stay where
// they are, under their unprocessed keys, and the HandoffBook marks them held so that
// dequeue and later takes pass them by. Taking a batch so writes (and fsyncs) a few
// hundred bytes instead of writing every event a second time (measured: the rewrite
// was half of a take's cost), completing it deletes the header and its events in one
// batch, and returning it deletes just the header.
// Invariants: every key a stored header lists is an unprocessed key on disk (dequeue
// and takes never take a held key, and completing removes both at once), so after any
// crash an event is free, or held by exactly one batch.

import type { Level } from 'level'
import { BingeError } from '../../errors.js'
import { type HeldBatch, fitsBatch, handoffFit } from '../handoff-book.js'
import {
  type Op,
  READ_AHEAD,
  type Range,
  handoffHeaderKey,
  parseHandoffKey,
  queueKeyOf,
  ranges,
  unprocessedKey,
  unprocessedKeyBelow,
} from './keys.js'
import { seqString } from '../queue-key.js'
import type { EventRecord, HandoffBatch, TakeForHandoffOptions } from '../types.js'

type Db = Level<string, string>

const CHUNK = 2000

export interface Header {
  peer: string
  takenAt: number
  /** Queue keys, in queue order. */
  keys: string[]
}

export interface Found {
  /** Queue key. */
  key: string
  json: string
  /** Its UTF-8 bytes. */
  bytes: number
  record: EventRecord
}

/**
 * Spans [lo, hi) of unprocessed db keys that a take has read through and found nothing
 * any take may have (held, gone, out of hops or too big), newest first and disjoint. Takes read
 * from the newest end, so without these each one would step again over the deleted keys
 * of every batch completed before it: LevelDB keeps them until a compaction, and a
 * reverse read skips them one by one (a take's read was measured growing from 4 to 20 ms
 * and worse). So a take reads only the gaps between spans, and only below the next
 * sequence number: above it there is nothing, but maybe the deleted keys of the newest
 * batches. A span ends at the key after the newest it saw, and new events only ever get
 * larger keys, so they are never inside one; nack and returnHandoff put events back in
 * their old places, and forget the spans around them.
 */
export class CoveredSpans {
  private spans: Array<{ lo: string; hi: string }> = []
  private limits?: string

  constructor(private readonly max = 32) {}

  /** A span's "out of hops" and "too big" hold for one `maxHops` and `maxBytes`: others clear them. */
  useLimits(maxHops: number, maxBytes: number | undefined): void {
    const limits = `${maxHops}/${maxBytes ?? ''}`
    if (this.limits === limits) return
    this.spans = []
    this.limits = limits
  }

  /**
   * The parts of `range` no span covers, newest first, each up to and including its
   * largest possible key: a reverse read bounded by `lt` starts with a forward seek to
   * that bound, which would step over every deleted key above it first.
   */
  gaps(range: Range): Array<{ gte: string; lte: string }> {
    const gaps: Array<{ gte: string; lte: string }> = []
    const push = (gte: string, lt: string) => {
      const lte = unprocessedKeyBelow(lt)
      if (lte !== undefined && gte <= lte) gaps.push({ gte, lte })
    }
    let top = range.lt
    for (const span of this.spans) {
      if (span.hi <= range.gte) break
      if (span.lo >= top) continue
      if (span.hi < top) push(span.hi, top)
      top = span.lo
      if (top <= range.gte) return gaps
    }
    if (range.gte < top) push(range.gte, top)
    return gaps
  }

  add(lo: string, hi: string): void {
    if (!(lo < hi)) return
    const kept: Array<{ lo: string; hi: string }> = []
    for (const span of this.spans) {
      if (span.hi < lo || span.lo > hi) kept.push(span)
      else {
        lo = span.lo < lo ? span.lo : lo
        hi = span.hi > hi ? span.hi : hi
      }
    }
    kept.push({ lo, hi })
    kept.sort((x, y) => (x.lo < y.lo ? 1 : x.lo > y.lo ? -1 : 0))
    // The oldest spans matter least: takes start at the newest end.
    this.spans = kept.slice(0, this.max)
  }

  /** Events are back under these db keys: no span may cover them. */
  forget(dbKeys: string[]): void {
    this.spans = this.spans.filter((span) => !dbKeys.some((key) => span.lo <= key && key < span.hi))
  }

  clear(): void {
    this.spans = []
  }
}

/**
 * Up to `limit` of the newest events of `range` that a handoff under `options` may take,
 * in queue order, skipping held keys and covered spans, a chunk at a time. Records in
 * `covered` the span it read through without finding anything a later take could have.
 */
export async function findNewest(
  db: Db,
  range: Range,
  limit: number,
  options: TakeForHandoffOptions,
  held: (queueKey: string) => boolean,
  covered: CoveredSpans,
): Promise<Found[]> {
  covered.useLimits(options.maxHops, options.maxBytes)
  const found: Found[] = []
  /** The newest key seen, and how far down everything from it is covered (db keys). */
  let top: string | undefined
  let coveredFrom: string | undefined
  let contiguous = true
  /** Bytes of the events found, and whether the next would have gone over options.maxBytes. */
  let bytes = 0
  let full = false
  for (const gap of covered.gaps(range)) {
    const it = db.iterator({ ...gap, reverse: true, highWaterMarkBytes: READ_AHEAD })
    try {
      while (found.length < limit && !full) {
        const chunk = await it.nextv(Math.min(CHUNK, Math.max(64, limit - found.length)))
        if (chunk.length === 0) break
        for (const [dbKey, json] of chunk) {
          const key = queueKeyOf(dbKey)
          // Exclusive, at the next key itself, so spans taken one after another touch.
          top ??= unprocessedKey(seqString(Number(key) + 1))
          if (!held(key)) {
            const fit = handoffFit(json, options)
            const size = fit.record === undefined ? 0 : Buffer.byteLength(json)
            if (fit.record !== undefined && !fitsBatch(size, bytes, found.length, options)) {
              // The next batch's: not covered.
              full = true
              break
            }
            if (fit.record !== undefined) {
              found.push({ key, json, bytes: size, record: fit.record })
              bytes += size
            }
            // Not for this peer, but maybe for another: a later take must read it.
            else if (fit.why === 'origin') contiguous = false
          }
          if (contiguous) coveredFrom = dbKey
          if (found.length === limit) break
        }
      }
    } finally {
      await it.close()
    }
    if (found.length === limit || full) break
    if (contiguous && top !== undefined) coveredFrom = gap.gte
  }
  if (top !== undefined && coveredFrom !== undefined) covered.add(coveredFrom, top)
  return found.reverse()
}

/** Hold found events in a new batch: one header, no event moves. */
export function takeOps(handoffId: string, header: Header): Op[] {
  return [{ type: 'put', key: handoffHeaderKey(handoffId), value: JSON.stringify(header) }]
}

/** The peer has the batch: its header and its events go. */
export function completeOps(batch: HeldBatch<unknown>): Op[] {
  return [
    { type: 'del', key: handoffHeaderKey(batch.handoffId) },
    ...batch.keys.map((key): Op => ({ type: 'del', key: unprocessedKey(key) })),
  ]
}

/** The batch is given up: its events, never moved, are free again. */
export function returnOps(batch: HeldBatch<unknown>): Op[] {
  return [{ type: 'del', key: handoffHeaderKey(batch.handoffId) }]
}

/** Every pending batch's header, in key order (the bytes of its events come later). */
export async function scanHandoffs(db: Db): Promise<Array<{ handoffId: string; header: Header }>> {
  const found: Array<{ handoffId: string; header: Header }> = []
  const it = db.iterator({ ...ranges.handingOff, highWaterMarkBytes: READ_AHEAD })
  try {
    for (let chunk = await it.nextv(CHUNK); chunk.length > 0; chunk = await it.nextv(CHUNK)) {
      for (const [dbKey, value] of chunk) {
        const { handoffId, queueKey } = parseHandoffKey(dbKey)
        if (queueKey !== '') {
          throw new BingeError(
            'BINGE_INTERNAL',
            `queue in ${db.location} holds a handoff event under ${JSON.stringify(dbKey)}, which layout 2 never writes`,
          )
        }
        found.push({ handoffId, header: JSON.parse(value) as Header })
      }
    }
  } finally {
    await it.close()
  }
  return found
}

/**
 * Layout 1 kept a batch's events inside the bucket (`h!ID NUL key`, moved there from
 * unprocessed) and no key list in the header: the ops that bring such a store to layout
 * 2, putting each event back under its unprocessed key and listing it in its header.
 */
export async function migrateLayout1(db: Db): Promise<Op[]> {
  const ops: Op[] = []
  const headers = new Map<string, Header>()
  const it = db.iterator({ ...ranges.handingOff, highWaterMarkBytes: READ_AHEAD })
  try {
    for (let chunk = await it.nextv(CHUNK); chunk.length > 0; chunk = await it.nextv(CHUNK)) {
      for (const [dbKey, value] of chunk) {
        const { handoffId, queueKey } = parseHandoffKey(dbKey)
        let header = headers.get(handoffId)
        if (header === undefined) headers.set(handoffId, (header = { peer: '', takenAt: 0, keys: [] }))
        if (queueKey === '') {
          const old = JSON.parse(value) as { peer: string; takenAt: number }
          header.peer = old.peer
          header.takenAt = old.takenAt
          continue
        }
        header.keys.push(queueKey)
        ops.push({ type: 'del', key: dbKey }, { type: 'put', key: unprocessedKey(queueKey), value })
      }
    }
  } finally {
    await it.close()
  }
  for (const [handoffId, header] of headers) {
    if (header.keys.length === 0) ops.push({ type: 'del', key: handoffHeaderKey(handoffId) })
    else ops.push({ type: 'put', key: handoffHeaderKey(handoffId), value: JSON.stringify(header) })
  }
  return ops
}

/** The oldest `limit` unprocessed events from `cursor` up to `end` (excluded) that no handoff holds, and the last key read over. */
export async function readFree(
  db: Db,
  cursor: string,
  end: string,
  limit: number,
  holds: (queueKey: string) => boolean,
): Promise<{ entries: Array<[string, string]>; last: string }> {
  const entries: Array<[string, string]> = []
  let last = ''
  const it = db.iterator({ gte: cursor, lt: end, highWaterMarkBytes: READ_AHEAD })
  try {
    while (entries.length < limit) {
      const chunk = await it.nextv(limit - entries.length)
      if (chunk.length === 0) break
      for (const entry of chunk) {
        last = entry[0]
        if (!holds(queueKeyOf(entry[0]))) entries.push(entry)
      }
    }
  } finally {
    await it.close()
  }
  return { entries, last }
}

/** The events of the pending batches, read back; a batch finished while this read ran is left out. */
export async function readPending(
  db: Db,
  batches: Array<HeldBatch<unknown>>,
  pending: (handoffId: string) => boolean,
): Promise<HandoffBatch[]> {
  const values = await db.getMany(batches.flatMap((b) => b.keys.map(unprocessedKey)))
  const found: HandoffBatch[] = []
  let at = 0
  for (const { handoffId, peer, takenAt, keys } of batches) {
    const stored = values.slice(at, (at += keys.length))
    if (!pending(handoffId) || stored.some((v) => v === undefined)) continue
    const texts = stored as string[]
    found.push({ handoffId, peer, takenAt, events: texts.map((v) => JSON.parse(v) as EventRecord), texts })
  }
  return found
}
