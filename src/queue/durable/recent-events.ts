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

import { SEQ_WIDTH, seqString } from '../queue-key.js'
import { ranges, unprocessedKey } from './keys.js'

/** The number a dequeue cursor reads from: `u!` (all), `u!SEQ` (from SEQ) or `u!SEQ NUL` (after SEQ). */
function cursorSeq(cursor: string): number {
  const at = ranges.unprocessed.gte.length
  const digits = cursor.slice(at, at + SEQ_WIDTH)
  return digits === '' ? 0 : Number(digits) + (cursor.length > at + SEQ_WIDTH ? 1 : 0)
}

export class RecentEvents {
  private readonly events = new Map<number, string>()
  private from = 0
  private end = 0
  private bytes = 0

  /** `maxBytes`: of JSON text kept at most (16 MiB: a few seconds of a fast ingest). */
  constructor(private readonly maxBytes = 16 * 2 ** 20) {}

  /** Nothing is known below `nextSeq`: everything there is on disk only. */
  reset(nextSeq: number): void {
    this.events.clear()
    this.bytes = 0
    this.from = this.end = nextSeq
  }

  /** Events just made visible under `from`, `from + 1`, …; earlier numbers were all told before. */
  added(from: number, jsons: readonly string[]): void {
    if (from < this.end) {
      // Out of order: nothing should do this; forget rather than risk a wrong answer.
      this.reset(Math.max(this.end, from + jsons.length))
      return
    }
    jsons.forEach((json, i) => {
      this.events.set(from + i, json)
      this.bytes += json.length
    })
    this.end = from + jsons.length
    this.evict()
  }

  /** The events under these numbers are gone from disk. */
  deleted(seqs: Iterable<number>): void {
    for (const seq of seqs) {
      const json = this.events.get(seq)
      if (json === undefined) continue
      this.events.delete(seq)
      this.bytes -= json.length
    }
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
  ): { entries: Array<[string, string]>; last: string } | undefined {
    const start = cursorSeq(cursor)
    if (start < this.from || visible > this.end) return undefined
    const entries: Array<[string, string]> = []
    let last = ''
    for (let seq = start; seq < visible && entries.length < limit; seq++) {
      const key = seqString(seq)
      last = unprocessedKey(key)
      const json = this.events.get(seq)
      if (json !== undefined && !held(key)) entries.push([last, json])
    }
    return { entries, last }
  }

  private evict(): void {
    if (this.bytes <= this.maxBytes) return
    for (const [seq, json] of this.events) {
      this.events.delete(seq)
      this.bytes -= json.length
      this.from = seq + 1
      if (this.bytes <= this.maxBytes / 2) return
    }
  }
}
