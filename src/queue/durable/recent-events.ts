// The newest unprocessed events, kept in memory as they were written, so a dequeue that
// keeps up with ingest reads them here instead of from LevelDB: an iterator per dequeue
// (a round trip to libuv's pool, and each value copied back out of the store) was an
// eighth of the main thread's time under single-event ingest.
//
// Invariant: for every sequence number in [from, end), the event under that unprocessed
// key is in `events` exactly when it is on disk. So it is told of every write and every
// delete of an unprocessed key at or past `from` (visible enqueue groups, dead-letter
// replays, acks, completed handoffs), in sequence order for writes; numbers a failed
// group skipped are simply absent. Held keys (in flight, handing off) stay: the reader
// passes them by, as readFree does. Past `maxBytes` the oldest are dropped and `from`
// moves up past them; a dequeue whose cursor is below `from` reads LevelDB, as before.
// Anything else (a reopen after a fault, say) resets it: `from` = `end` = next number.
//
// An event written with its record exact (the record is what JSON.parse of its stored
// JSON gives: admission.ts `exact`) keeps that record too, so the first dequeue hands it
// out without parsing the text again (a parse was a twelfth of the main thread's time
// under single-event ingest). It is handed out once (`handOut`): the worker may change
// it, so a second dequeue of the event (after a nack) parses the stored text, as from
// LevelDB. Records are kept for at most `maxRecordChars` of JSON text: a parsed event
// takes a few times its text's memory, and only a dequeue that keeps up needs them.

import { SEQ_WIDTH, seqString } from '../queue-key.js'
import type { EventRecord, QueuedEvent } from '../types.js'
import { ranges, unprocessedKey } from './keys.js'

/** The number a dequeue cursor reads from: `u!` (all), `u!SEQ` (from SEQ) or `u!SEQ NUL` (after SEQ). */
function cursorSeq(cursor: string): number {
  const at = ranges.unprocessed.gte.length
  const digits = cursor.slice(at, at + SEQ_WIDTH)
  return digits === '' ? 0 : Number(digits) + (cursor.length > at + SEQ_WIDTH ? 1 : 0)
}

/** An event as written: its stored JSON, its size in bytes, and its record if `exact` (see above). */
export interface Written {
  json: string
  bytes: number
  record?: EventRecord
  exact?: boolean
}

/** What the store keeps of an event: its JSON and size, and its record until handed out. */
export type Kept = Omit<Written, 'exact'>

export class RecentEvents {
  private readonly events = new Map<number, Kept>()
  private from = 0
  private end = 0
  /** Characters of JSON kept, and of JSON whose record is kept. */
  private chars = 0
  private recordChars = 0

  /**
   * `maxBytes`: of JSON text kept at most (16 MiB: a few seconds of a fast ingest);
   * `maxRecordChars`: of JSON text whose records are kept too (256 KiB).
   */
  constructor(
    private readonly maxBytes = 16 * 2 ** 20,
    private readonly maxRecordChars = 256 * 1024,
  ) {}

  /** Nothing is known below `nextSeq`: everything there is on disk only. */
  reset(nextSeq: number): void {
    this.events.clear()
    this.chars = 0
    this.recordChars = 0
    this.from = this.end = nextSeq
  }

  /** Events just made visible under `from`, `from + 1`, …; earlier numbers were all told before. */
  added(from: number, written: readonly Written[]): void {
    if (from < this.end) {
      // Out of order: nothing should do this; forget rather than risk a wrong answer.
      this.reset(Math.max(this.end, from + written.length))
      return
    }
    for (let i = 0; i < written.length; i++) {
      const { json, bytes, record, exact } = written[i]!
      const kept: Kept = { json, bytes }
      if (exact === true && record !== undefined && this.recordChars + json.length <= this.maxRecordChars) {
        kept.record = record
        this.recordChars += json.length
      }
      this.events.set(from + i, kept)
      this.chars += json.length
    }
    this.end = from + written.length
    this.evict()
  }

  /**
   * A kept event's record as a dequeue gives it under `key` (its fields in the stored
   * order, as JSON.parse gives them, then the key), once: later reads parse its JSON.
   */
  handOut(kept: Kept, key: string): QueuedEvent | undefined {
    const record = kept.record
    if (record === undefined) return undefined
    kept.record = undefined
    this.recordChars -= kept.json.length
    const event = { id: record.id, origin: record.origin, receivedAt: record.receivedAt, hops: record.hops } as QueuedEvent
    if (record.keyed === true) event.keyed = true
    if (record.pipeline !== undefined) event.pipeline = record.pipeline
    event.data = record.data
    event.key = key
    return event
  }

  /** The events under these numbers are gone from disk. */
  deleted(seqs: Iterable<number>): void {
    for (const seq of seqs) {
      const kept = this.events.get(seq)
      if (kept === undefined) continue
      this.forget(seq, kept)
    }
  }

  private forget(seq: number, kept: Kept): void {
    this.events.delete(seq)
    this.chars -= kept.json.length
    if (kept.record !== undefined) this.recordChars -= kept.json.length
  }

  /**
   * What readFree would find from `cursor` (keys.ts layout) below number `visible`: up
   * to `limit` events `held` does not hold (by queue key), in order, and the db key
   * of the last number looked at ('' if none), held or holding nothing (no event can
   * appear there later but by nack or a returned handoff, which move the cursor back).
   * Undefined when what lies there is not all known here: then LevelDB is read.
   */
  read(
    cursor: string,
    visible: number,
    limit: number,
    held: (queueKey: string) => boolean,
  ): { entries: Array<[string, string, Kept]>; last: string } | undefined {
    const start = cursorSeq(cursor)
    if (start < this.from || visible > this.end) return undefined
    const entries: Array<[string, string, Kept]> = []
    let last = ''
    for (let seq = start; seq < visible && entries.length < limit; seq++) {
      const key = seqString(seq)
      last = unprocessedKey(key)
      const kept = this.events.get(seq)
      if (kept !== undefined && !held(key)) entries.push([last, kept.json, kept])
    }
    return { entries, last }
  }

  private evict(): void {
    if (this.chars <= this.maxBytes) return
    for (const [seq, kept] of this.events) {
      this.forget(seq, kept)
      this.from = seq + 1
      if (this.chars <= this.maxBytes / 2) return
    }
  }
}
