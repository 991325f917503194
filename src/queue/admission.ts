// Admission: which events of one enqueue call are new, which are duplicates, and
// whether the new ones fit under the caps. Shared by every backend so dedupe and cap
// semantics cannot drift apart. Invariants: all or nothing per call (a call over the
// cap takes no room and marks no id as seen); an id accepted earlier in the same group
// (or the same call) is a duplicate; an index entry older than the window is not.

import { hash } from 'node:crypto'
import { BingeError } from '../errors.js'
import { isUuidv7 } from '../ids.js'
import type { EnqueueOptions, EnqueueResult, EventRecord } from './types.js'

/** Seconds a client is told to wait when the queue is full. */
export const FULL_RETRY_AFTER_S = 1

export interface Room {
  /** Events that may still be added. */
  events: number
  bytes: number
}

/** An event ready to store: checked and serialized once, in the caller's own call. */
export interface PreparedEvent {
  record: EventRecord
  json: string
  bytes: number
  /**
   * Looked up in the dedupe index: all but ids this node just made (EnqueueOptions.newIds)
   * and, in a batch, ids binge made (`made`).
   */
  indexed: boolean
  /**
   * In a batch (EnqueueOptions.batch), not keyed and shaped as binge makes ids (UUIDv7):
   * an id that can come again only inside its batch, which its entry stands for. A store
   * that may still hold entries from before batch entries looks these up too.
   */
  made: boolean
  /**
   * `record` is exactly what JSON.parse of `json` gives: its data came as the text it is
   * stored as (EnqueueOptions.dataTexts) and it has no meta (shared by a payload's events).
   * A dequeue may then hand the record out instead of parsing (recent-events.ts).
   */
  exact: boolean
  /** The dedupe id of the call's batch (batchDedupeId), the same on each of its events. */
  batch?: string
  /** Of pipeline and data, for an indexed event when EnqueueOptions.fingerprint asks. */
  fingerprint?: string
}

export interface Admitted {
  results: EnqueueResult[]
  fresh: PreparedEvent[]
  /** The batch's dedupe id, to remember with the fresh events (there are some). */
  batch?: string
}

/**
 * The dedupe index entry of a batch (EnqueueOptions.batch): a NUL first, which no event
 * id has (ids are printable text), so it never stands for an event.
 */
export function batchDedupeId(batch: string): string {
  return `\u0000${batch}`
}

/** Is the event added to the index once accepted? An indexed one, but never one binge made in a batch (`made`). */
export function remembered(event: PreparedEvent): boolean {
  return event.indexed && !event.made
}

/**
 * For a store that may hold an entry per handed-in event (written before batch entries
 * existed, within the dedupe window): look up the ids binge made in batches too.
 */
export function lookUpMadeIds(events: PreparedEvent[]): void {
  for (const event of events) if (event.made) event.indexed = true
}

/** What one group of calls looks up in the dedupe index: indexed ids and batch entries. */
export function dedupeIds(calls: PreparedEvent[][]): string[] {
  const ids = new Set<string>()
  for (const events of calls) {
    const batch = events[0]?.batch
    if (batch !== undefined) ids.add(batch)
    for (const event of events) if (event.indexed) ids.add(event.record.id)
  }
  return [...ids]
}

export interface AdmissionContext {
  now: number
  dedupeWindowMs: number
  /** When the index last accepted this id, if it holds it. */
  seenAt: (id: string) => number | undefined
  /** The fingerprint the index holds for this id, if it holds one. */
  fingerprintOf?: (id: string) => string | undefined
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
  if (event.keyed === true) record.keyed = true
  if (event.pipeline !== undefined) record.pipeline = event.pipeline
  if (event.meta !== undefined) record.meta = event.meta
  return record
}

/**
 * Check and serialize one call's events before it joins a group, so a malformed event
 * (no id, data JSON cannot hold) fails its own call and never the group it would join.
 * The data is serialized once: the stored JSON and the fingerprint both use that text.
 */
export function prepare(events: EventRecord[], options: EnqueueOptions = {}): PreparedEvent[] {
  const indexed = options.newIds !== true
  const batch = options.batch === undefined ? undefined : batchDedupeId(options.batch)
  return events.map((event, i) => {
    if (typeof event?.id !== 'string' || event.id.length === 0) {
      throw new BingeError('BINGE_BAD_REQUEST', `event ${i} has no id`)
    }
    const record = toRecord(event)
    const given = options.dataTexts?.[i]
    let json: string
    let dataJson: string
    try {
      dataJson = given ?? JSON.stringify(record.data)
      if (typeof dataJson !== 'string' || dataJson[0] !== '{') throw new Error('data is not a JSON object')
      json = recordJson(record, dataJson)
    } catch (err) {
      throw new BingeError('BINGE_BAD_REQUEST', `event ${event.id} cannot be stored as JSON`, { cause: err })
    }
    const made = batch !== undefined && record.keyed !== true && isUuidv7(record.id)
    const exact = given !== undefined && record.meta === undefined
    const prepared: PreparedEvent = { record, json, bytes: Buffer.byteLength(json), indexed: indexed && !made, made, exact }
    if (batch !== undefined) prepared.batch = batch
    if (indexed && options.fingerprint === true && record.keyed === true) {
      // Canonical text: a resend with other whitespace is still the same event.
      prepared.fingerprint = fingerprintOfJson(record.pipeline, given === undefined ? dataJson : JSON.stringify(record.data))
    }
    return prepared
  })
}

let lastOrigin: string | undefined
let lastOriginJson = ''

/** JSON.stringify's text of a number: String's for a safe integer, the same text found faster. */
function numberJson(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : JSON.stringify(n)
}

/**
 * The record's fields but `data`, as a JSON object, in the order the store writes them
 * (toRecord's: id, origin, receivedAt, hops, keyed, pipeline, meta). A handoff sender
 * finds an event's stored data text after it (mesh/handoff-frame.ts).
 */
export function recordHeadJson(record: Omit<EventRecord, 'data'>): string {
  // Once per event stored (a tenth of batch ingest's main thread in JSON.stringify):
  // the origin is nearly always the last one seen, and the numbers are integers.
  if (record.origin !== lastOrigin) {
    lastOrigin = record.origin
    lastOriginJson = JSON.stringify(record.origin)
  }
  let json = `{"id":${JSON.stringify(record.id)},"origin":${lastOriginJson},"receivedAt":${numberJson(record.receivedAt)},"hops":${numberJson(record.hops)}`
  if (record.keyed === true) json += ',"keyed":true'
  if (record.pipeline !== undefined) json += `,"pipeline":${JSON.stringify(record.pipeline)}`
  if (record.meta !== undefined) json += `,"meta":${JSON.stringify(record.meta)}`
  return `${json}}`
}

/** The stored form: the head, then `data` last from its text (`dataJson`, or `data` serialized). */
export function recordJson(record: EventRecord, dataJson = JSON.stringify(record.data)): string {
  return `${recordHeadJson(record).slice(0, -1)},"data":${dataJson}}`
}

/** 128 bits of SHA-256 over pipeline and data: what "the same event" means for a reused id. */
function fingerprintOfJson(pipeline: string | undefined, dataJson: string): string {
  return hash('sha256', `${pipeline ?? ''}\u0000${dataJson}`, 'base64url').slice(0, 22)
}

export function isSeenWithin(at: number | undefined, now: number, windowMs: number): boolean {
  return at !== undefined && at > now - windowMs
}

/** How often a backend forgets dedupe entries older than the window (a late sweep is harmless: lookups ignore them). */
export function sweepInterval(windowMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(windowMs / 4)))
}

export function admit(events: PreparedEvent[], ctx: AdmissionContext): Admitted | BingeError {
  // A batch accepted before (or earlier in this group) comes again whole: a resend.
  const batch = events[0]?.batch
  if (batch !== undefined && (ctx.taken.has(batch) || isSeenWithin(ctx.seenAt(batch), ctx.now, ctx.dedupeWindowMs))) {
    return { results: events.map((event) => ({ id: event.record.id, duplicate: true })), fresh: [] }
  }
  const results: EnqueueResult[] = []
  const fresh: PreparedEvent[] = []
  const mine = new Set<string>()
  let bytes = 0
  for (const event of events) {
    const id = event.record.id
    const seenBefore = event.indexed && isSeenWithin(ctx.seenAt(id), ctx.now, ctx.dedupeWindowMs)
    if (seenBefore && event.fingerprint !== undefined) {
      const held = ctx.fingerprintOf?.(id)
      if (held !== undefined && held !== event.fingerprint) {
        return new BingeError(
          'BINGE_IDEMPOTENCY_CONFLICT',
          `the id "${id}" was accepted within the dedupe window for a different event; an Idempotency-Key (with its -N suffixes for a batch) may be reused only for the same events`,
          { details: { id } },
        )
      }
    }
    const duplicate = mine.has(id) || ctx.taken.has(id) || seenBefore
    results.push({ id, duplicate })
    if (duplicate) continue
    mine.add(id)
    bytes += event.bytes
    fresh.push(event)
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
  if (batch === undefined || fresh.length === 0) return { results, fresh }
  ctx.taken.add(batch)
  return { results, fresh, batch }
}
