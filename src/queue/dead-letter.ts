// What a dead letter is, for both backends: the event as it was accepted (the stored
// copy, not a worker's possibly changed object), the pipeline that failed it, the last
// error and the attempts. There is one per event id, failed pipeline and queue key, so
// a later acceptance of the same id (after the dedupe window) never overwrites an older
// one; dead letters are listed in the order of their letter id. Replay puts one back
// as a new unprocessed event for its failed pipeline alone.

import { recordJson, toRecord } from './admission.js'
import type { DeadLetter, DeadLetterInput, EventRecord } from './types.js'

/**
 * A dead letter's id: event id, pipeline and queue key, NUL-separated. NUL cannot occur
 * in an HTTP header (where ids come from); readers still check the stored id, never this.
 */
export const letterId = (id: string, pipeline: string, queueKey: string): string => `${id}\u0000${pipeline}\u0000${queueKey}`

/** The letter ids that begin with this event id: from `gte` up to (not including) `lt`. */
export const letterIdsOf = (id: string): { gte: string; lt: string } => ({ gte: `${id}\u0000`, lt: `${id}\u0001` })

/** One acked event's dead letters, [letter id, stored JSON]; a pipeline named twice is kept once (its last). */
export function deadLetters(event: EventRecord, queueKey: string, failed: DeadLetterInput[], at: number): Array<[string, string]> {
  const byId = new Map(failed.map((f) => [letterId(event.id, f.pipeline, queueKey), f]))
  return [...byId].map(([id, f]) => {
    const letter: DeadLetter = { event, pipeline: f.pipeline, error: f.error, attempts: f.attempts, at }
    return [id, JSON.stringify(letter)]
  })
}

/** The stored JSON of a replayed dead letter: its event, for the failed pipeline alone, laid out as every event is stored (data last). */
export function replayJson(letter: DeadLetter): string {
  return recordJson({ ...toRecord(letter.event), pipeline: letter.pipeline })
}
