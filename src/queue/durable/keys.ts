// The durable queue's key layout (docs/design.md §4): one LevelDB, one ASCII prefix per
// bucket, so every bucket is a contiguous range and a move between buckets is a del + put
// in one batch. Invariants: a queue key is a fixed-width decimal sequence (../queue-key.ts),
// so byte order is arrival order (the newest unprocessed events are a reverse range read,
// for handoff); an event keeps its queue key in every bucket it passes through, so it can
// go back to its place; the dedupe index has a second, time-ordered part so expiry is a
// range, not a scan.
import { letterIdsOf } from '../dead-letter.js'
import { SEQ_WIDTH, isQueueKey, seqString } from '../queue-key.js'
import { type StateSink, applyStateOps } from '../state-ops.js'
import type { StateOp } from '../types.js'

const TIME_WIDTH = 16

export interface Range {
  gte: string
  lt: string
}

/** `prefix!` up to (not including) `prefix"`: '"' is the byte after '!'. */
function bucket(prefix: string) {
  const start = `${prefix}!`
  return { start, range: { gte: start, lt: `${prefix}"` } satisfies Range }
}

const unprocessed = bucket('u')
/** In-flight copies, written by layout 2 before issue 14: open moves them back (recovery.ts); nothing writes them now. */
const inflight = bucket('f')
const deadletter = bucket('d')
const handingOff = bucket('h')
const seen = bucket('x')
const seenByTime = bucket('y')
const state = bucket('s')
const meta = bucket('m')

export const ranges = {
  unprocessed: unprocessed.range,
  inflight: inflight.range,
  deadletter: deadletter.range,
  handingOff: handingOff.range,
  seenByTime: seenByTime.range,
} as const

/** The opaque `QueuedEvent.key` is the sequence string; the bucket adds its prefix. */
export const unprocessedKey = (key: string): string => unprocessed.start + key
export const inflightKey = (key: string): string => inflight.start + key
export const queueKeyOf = (dbKey: string): string => dbKey.slice(unprocessed.start.length)
/** The largest unprocessed key strictly before `bound` (an unprocessed key, maybe with a suffix). */
export function unprocessedKeyBelow(bound: string): string | undefined {
  if (!bound.startsWith(unprocessed.start)) return bound < unprocessed.start ? undefined : unprocessedKey('9'.repeat(SEQ_WIDTH))
  const digits = bound.slice(unprocessed.start.length, unprocessed.start.length + SEQ_WIDTH)
  if (!isQueueKey(digits)) return undefined
  if (bound.length > unprocessed.start.length + SEQ_WIDTH) return unprocessedKey(digits)
  const seq = Number(digits)
  return seq > 0 ? unprocessedKey(seqString(seq - 1)) : undefined
}

/** A dead letter under its letter id (../dead-letter.ts: event id, pipeline, queue key). */
export const deadletterKey = (letterId: string): string => deadletter.start + letterId
/** Every dead letter of one event id. */
export function deadletterRangeOf(id: string): Range {
  const ids = letterIdsOf(id)
  return { gte: deadletterKey(ids.gte), lt: deadletterKey(ids.lt) }
}

/**
 * Handing-off bucket: per batch, one header `h!ID NUL` (peer, time taken, the queue keys
 * of its events, which stay in unprocessed: handoff-store.ts). Layout 1 also kept the
 * events here, under `h!ID NUL queueKey`; opening such a store migrates it. Handoff ids
 * are made by this node and never contain NUL (../handoff-book.ts checks).
 */
export const handoffHeaderKey = (handoffId: string): string => `${handingOff.start}${handoffId}\u0000`
/** The handoff id and queue key ('' for the header) of a key in the handing-off bucket. */
export function parseHandoffKey(dbKey: string): { handoffId: string; queueKey: string } {
  const nul = dbKey.indexOf('\u0000', handingOff.start.length)
  return { handoffId: dbKey.slice(handingOff.start.length, nul), queueKey: dbKey.slice(nul + 1) }
}

/**
 * Dedupe index: id -> time accepted, and, per enqueue group, (time, first queue key)
 * -> the ids it accepted: one time-ordered entry per group rather than per id keeps
 * the index's cost on the ingest path small, and the sweep still reads a range. A
 * handed-in batch's entry has the id NUL PEERID NUL HANDOFFID (admission.ts,
 * batchDedupeId): no event id holds a NUL.
 */
export const seenKey = (id: string): string => seen.start + id
/**
 * A dedupe entry's value: the time the id was accepted, and for an event fingerprinted
 * at admission (EnqueueOptions.fingerprint) a space and the fingerprint. Entries written
 * before fingerprints existed hold the time alone, and read as unfingerprinted.
 */
export const seenValue = (at: number, fingerprint?: string): string => (fingerprint === undefined ? String(at) : `${at} ${fingerprint}`)
export function parseSeen(value: string): { at: number; fingerprint?: string } {
  const space = value.indexOf(' ')
  return space < 0 ? { at: Number(value) } : { at: Number(value.slice(0, space)), fingerprint: value.slice(space + 1) }
}
export const seenByTimeKey = (at: number, tag: string): string =>
  `${seenByTime.start}${String(Math.max(0, Math.floor(at))).padStart(TIME_WIDTH, '0')}!${tag}`
/** Every time-ordered entry strictly older than `at`. */
export const seenBefore = (at: number): Range => ({
  gte: seenByTime.range.gte,
  lt: seenByTimeKey(at, ''),
})
export function timeOfSeenByTime(key: string): number {
  return Number(key.slice(seenByTime.start.length, seenByTime.start.length + TIME_WIDTH))
}

export const stateKey = (key: string): string => state.start + key
/** Every state key starting with `prefix`: keys compare as UTF-8 bytes, which keep code point order. */
export function stateRangeOf(prefix: string): Range {
  const gte = stateKey(prefix)
  const last = prefix.charCodeAt(prefix.length - 1)
  if (prefix.length === 0) return state.range
  const lt = last < 0xd7ff ? gte.slice(0, -1) + String.fromCharCode(last + 1) : `${gte}\u{10ffff}`
  return { gte, lt }
}
export const stateKeyOf = (dbKey: string): string => dbKey.slice(state.start.length)
export const metaKey = (name: string): string => meta.start + name
/** The first sequence number never handed out (so keys are never reused). */
export const nextSeqKey = metaKey('next-seq')
/**
 * The next sequence number as a version with batch dedupe entries last wrote it (with
 * every `next-seq`): an older version writes `next-seq` alone, so a difference at open
 * tells that one ran on this store in between (recovery.ts, batchEntriesSince).
 */
export const batchEntriesSeqKey = metaKey('batch-entries-seq')
/** The ops that store the next sequence number. */
export function nextSeqOps(seq: number): Op[] {
  return [
    { type: 'put', key: nextSeqKey, value: String(seq) },
    { type: 'put', key: batchEntriesSeqKey, value: String(seq) },
  ]
}

/** The one operation shape every batch of the durable queue is made of. */
export type Op = { type: 'put'; key: string; value: string } | { type: 'del'; key: string }

/**
 * Bytes an iterator reads ahead per native call: enough for thousands of entries of a
 * few KB. classic-level's default of 16 KB means a round trip per ~16 one-KB events.
 */
export const READ_AHEAD = 8 << 20

/** A stateful step's changes as store operations under the state prefix (applied as ../state-ops.ts says). */
export function stateOps(changes: readonly StateOp[]): Op[] {
  const ops: Op[] = []
  const sink: StateSink = {
    set: (key, json) => ops.push({ type: 'put', key: stateKey(key), value: json }),
    delete: (key) => ops.push({ type: 'del', key: stateKey(key) }),
  }
  applyStateOps(changes, sink)
  return ops
}
