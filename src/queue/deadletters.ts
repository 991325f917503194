// Reading and writing the durable dead-letter bucket. A dead letter keeps the event as
// it was accepted (the stored copy, not a worker's possibly changed object), its
// failed pipeline, the last error and the attempts; replay puts it back as a new
// unprocessed event for that pipeline alone.

import type { Level } from 'level'
import { toRecord } from './admission.js'
import * as k from './keys.js'
import type { AckOptions, DeadLetter, DeadLetterInput, EventRecord, QueuedEvent } from './types.js'

type Db = Level<string, string>

/** Puts for one acked event's dead letters; pipelines named twice are kept once. */
export function deadletterOps(event: EventRecord, queueKey: string, failed: DeadLetterInput[], at: number): k.Op[] {
  const byKey = new Map(failed.map((f) => [k.deadletterKey(event.id, f.pipeline, queueKey), f]))
  return [...byKey].map(([key, f]) => {
    const letter: DeadLetter = { event, pipeline: f.pipeline, error: f.error, attempts: f.attempts, at }
    return { type: 'put', key, value: JSON.stringify(letter) }
  })
}

/** Puts for the dead letters of a batch being acked, each from the event as accepted (not as a step may have changed the caller's object). */
export async function ackDeadletterOps(db: Db, events: QueuedEvent[], acks: AckOptions[], at: number): Promise<k.Op[]> {
  const failing = events.flatMap((_, i) => ((acks[i]!.deadletter ?? []).length > 0 ? [i] : []))
  if (failing.length === 0) return []
  const stored = await db.getMany(failing.map((i) => k.inflightKey(events[i]!.key)))
  return failing.flatMap((i, j) => {
    const value = stored[j]
    const record = value === undefined ? toRecord(events[i]!) : (JSON.parse(value) as EventRecord)
    return deadletterOps(record, events[i]!.key, acks[i]!.deadletter!, at)
  })
}

/** Every dead letter (ids absent) or those of the given ids, in key order. */
export async function findDeadletters(db: Db, ids?: string[]): Promise<Array<[string, DeadLetter]>> {
  const found: Array<[string, DeadLetter]> = []
  const scan = async (range: k.Range, id?: string): Promise<void> => {
    for (const [key, value] of await db.iterator({ ...range, highWaterMarkBytes: k.READ_AHEAD }).all()) {
      const dl = JSON.parse(value) as DeadLetter
      // An id containing NUL could fall inside another id's range: check the stored id.
      if (id === undefined || dl.event.id === id) found.push([key, dl])
    }
  }
  if (ids === undefined) await scan(k.ranges.deadletter)
  else for (const id of [...new Set(ids)].sort()) await scan(k.deadletterRangeOf(id), id)
  return found
}

/** Ops moving dead letters back to unprocessed under new keys, for their pipeline alone. */
export function replayOps(letters: Array<[string, DeadLetter]>, firstSeq: number): { ops: k.Op[]; bytes: number; nextSeq: number } {
  const ops: k.Op[] = []
  let bytes = 0
  let seq = firstSeq
  for (const [dlKey, dl] of letters) {
    const json = JSON.stringify({ ...toRecord(dl.event), pipeline: dl.pipeline })
    bytes += Buffer.byteLength(json)
    ops.push({ type: 'del', key: dlKey }, { type: 'put', key: k.unprocessedKey(k.seqString(seq++)), value: json })
  }
  ops.push({ type: 'put', key: k.nextSeqKey, value: String(seq) })
  return { ops, bytes, nextSeq: seq }
}
