// What the broker outputs (mqtt, nats, redis) send for each record: its envelope (they
// always receive envelopes, see OutputEntry.takesEnvelopes), the body (the envelope, or
// `data` alone with `envelope: false`), and a key that names this record in every
// retry and after a restart: the event id, then `<id>/<k>` for the k-th further record
// a step split the same event into (as `forward` does). Steps are deterministic, so a
// redelivered event yields the same keys: a broker's dedupe by key (JetStream's
// Nats-Msg-Id, the Redis output's id check) drops the resend.
import type { Envelope } from '../types.js'

export interface KeyedRecord {
  key: string
  envelope: Envelope
  /** The JSON text to send. */
  body: string
}

export function keyedRecords(records: readonly unknown[], envelope: boolean): KeyedRecord[] {
  const seen = new Map<string, number>()
  return records.map((record) => {
    const e = record as Envelope
    const k = seen.get(e.id) ?? 0
    seen.set(e.id, k + 1)
    return { key: k === 0 ? e.id : `${e.id}/${k}`, envelope: e, body: JSON.stringify(envelope ? e : e.data) }
  })
}
