// Admission: which events of one enqueue call are new, which are duplicates, and
// whether the new ones fit under the caps. Shared by every backend so dedupe and cap
// semantics cannot drift apart. Invariants: all or nothing per call (a call over the
// cap takes no room and marks no id as seen); an id accepted earlier in the same group
// (or the same call) is a duplicate; an index entry older than the window is not.

import { BingeError } from '../errors.js'
import type { EnqueueResult, EventRecord } from './types.js'

/** Seconds a client is told to wait when the queue is full. */
export const FULL_RETRY_AFTER_S = 1

export interface Room {
  /** Events that may still be added. */
  events: number
  bytes: number
}

export interface FreshEvent {
  record: EventRecord
  json: string
  bytes: number
}

export interface Admitted {
  results: EnqueueResult[]
  fresh: FreshEvent[]
}

export interface AdmissionContext {
  now: number
  dedupeWindowMs: number
  /** When the index last accepted this id, if it holds it. */
  seenAt: (id: string) => number | undefined
  /** Ids accepted earlier in this group; admit() adds the ids it accepts. */
  taken: Set<string>
  /** Room left under the caps; admit() subtracts what it accepts. */
  room: Room
}

/** Copy only the record's own fields: a QueuedEvent's `key` must not be stored. */
export function toRecord(event: EventRecord): EventRecord {
  const record: EventRecord = {
    id: event.id,
    origin: event.origin,
    receivedAt: event.receivedAt,
    hops: event.hops,
    data: event.data,
  }
  if (event.pipeline !== undefined) record.pipeline = event.pipeline
  return record
}

export function serialize(event: EventRecord): FreshEvent {
  const record = toRecord(event)
  const json = JSON.stringify(record)
  return { record, json, bytes: Buffer.byteLength(json) }
}

export function isSeenWithin(at: number | undefined, now: number, windowMs: number): boolean {
  return at !== undefined && at > now - windowMs
}

export function admit(events: EventRecord[], ctx: AdmissionContext): Admitted | BingeError {
  const results: EnqueueResult[] = []
  const fresh: FreshEvent[] = []
  const mine = new Set<string>()
  let bytes = 0
  for (const event of events) {
    const duplicate =
      mine.has(event.id) ||
      ctx.taken.has(event.id) ||
      isSeenWithin(ctx.seenAt(event.id), ctx.now, ctx.dedupeWindowMs)
    results.push({ id: event.id, duplicate })
    if (duplicate) continue
    mine.add(event.id)
    const f = serialize(event)
    bytes += f.bytes
    fresh.push(f)
  }
  if (fresh.length > ctx.room.events || bytes > ctx.room.bytes) {
    return new BingeError('BINGE_QUEUE_FULL', 'queue is full: retry later', {
      retryAfter: FULL_RETRY_AFTER_S,
      details: { events: fresh.length, bytes, roomEvents: ctx.room.events, roomBytes: ctx.room.bytes },
    })
  }
  ctx.room.events -= fresh.length
  ctx.room.bytes -= bytes
  for (const id of mine) ctx.taken.add(id)
  return { results, fresh }
}
