// Splitting a direct handoff's events into batches that each fit one frame, in order.
// Sizes are the events' JSON as the frame carries them; an event too big for any frame
// is reported, never sent (no peer could read it, so a resend would fail forever).
import type { EventRecord } from '../queue/types.js'

export type Split = { batches: EventRecord[][] } | { tooBig: { index: number; bytes: number } }

/** `events` in consecutive batches of at most `maxBytes` of JSON each (and at most `maxEvents`). */
export function splitByBytes(events: EventRecord[], maxBytes: number, maxEvents: number): Split {
  const batches: EventRecord[][] = []
  let batch: EventRecord[] = []
  let bytes = 0
  for (const [index, event] of events.entries()) {
    const size = Buffer.byteLength(JSON.stringify(event)) + 1
    if (size > maxBytes) return { tooBig: { index, bytes: size - 1 } }
    if (batch.length > 0 && (bytes + size > maxBytes || batch.length >= maxEvents)) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(event)
    bytes += size
  }
  if (batch.length > 0) batches.push(batch)
  return { batches }
}
