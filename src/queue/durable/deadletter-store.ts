// The durable dead-letter bucket (layout: keys.ts; what a dead letter is: ../dead-letter.ts):
// the puts of an ack's dead letters, made from the stored copy of each event; finding
// dead letters to replay; and the ops that move them back to unprocessed.

import type { Level } from 'level'
import { toRecord } from '../admission.js'
import { deadLetters, replayJson } from '../dead-letter.js'
import { seqString } from '../queue-key.js'
import type { AckOptions, DeadLetter, DeadLetterInput, EventRecord, QueuedEvent } from '../types.js'
import { type Op, READ_AHEAD, type Range, deadletterKey, deadletterRangeOf, nextSeqOps, ranges, unprocessedKey } from './keys.js'
import type { Written } from './recent-events.js'

type Db = Level<string, string>

/** Puts for one event's dead letters (../dead-letter.ts says which). */
export function deadletterPuts(record: EventRecord, queueKey: string, failed: DeadLetterInput[], at: number): Op[] {
  return deadLetters(record, queueKey, failed, at).map(
    ([letterId, json]): Op => ({ type: 'put', key: deadletterKey(letterId), value: json }),
  )
}

/** Puts for the dead letters of a batch being acked, each from the event as accepted (not as a step may have changed the caller's object). */
export async function ackDeadletterOps(db: Db, events: QueuedEvent[], acks: AckOptions[], at: number): Promise<Op[]> {
  const failing = events.flatMap((_, i) => ((acks[i]!.deadletter ?? []).length > 0 ? [i] : []))
  if (failing.length === 0) return []
  const stored = await db.getMany(failing.map((i) => unprocessedKey(events[i]!.key)))
  return failing.flatMap((i, j) => {
    const value = stored[j]
    const record = value === undefined ? toRecord(events[i]!) : (JSON.parse(value) as EventRecord)
    return deadletterPuts(record, events[i]!.key, acks[i]!.deadletter!, at)
  })
}

/** Every dead letter (ids absent) or those of the given ids, in key order. */
export async function findDeadletters(db: Db, ids?: string[]): Promise<Array<[string, DeadLetter]>> {
  const found: Array<[string, DeadLetter]> = []
  const scan = async (range: Range, id?: string): Promise<void> => {
    for (const [key, value] of await db.iterator({ ...range, highWaterMarkBytes: READ_AHEAD }).all()) {
      const letter = JSON.parse(value) as DeadLetter
      // An id containing NUL could fall inside another id's range: check the stored id.
      if (id === undefined || letter.event.id === id) found.push([key, letter])
    }
  }
  if (ids === undefined) await scan(ranges.deadletter)
  else for (const id of [...new Set(ids)].sort()) await scan(deadletterRangeOf(id), id)
  return found
}

/** Ops moving dead letters back to unprocessed under new keys, for their pipeline alone. */
export function replayOps(
  letters: Array<[string, DeadLetter]>,
  firstSeq: number,
): { ops: Op[]; bytes: number; written: Written[]; nextSeq: number } {
  const ops: Op[] = []
  const written: Written[] = []
  let bytes = 0
  let seq = firstSeq
  for (const [letterKey, letter] of letters) {
    const json = replayJson(letter)
    const size = Buffer.byteLength(json)
    bytes += size
    written.push({ json, bytes: size })
    ops.push({ type: 'del', key: letterKey }, { type: 'put', key: unprocessedKey(seqString(seq++)), value: json })
  }
  ops.push(...nextSeqOps(seq))
  return { ops, bytes, written, nextSeq: seq }
}
