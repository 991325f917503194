// Which handoff batches are pending, kept in memory beside the store by both backends
// (as claims.ts keeps in-flight events), and which events a handoff may take.
// Finishing a batch (complete, return) first claims its id here, synchronously, so two
// callers can never both finish it and put its events in two places; the id stays
// reserved until the finishing write is done, so a new take cannot reuse it meanwhile;
// a failed write gives the claim back and the batch is pending again.

import { BingeError } from '../errors.js'
import type { EventRecord, TakeForHandoffOptions } from './types.js'

export interface HeldBatch<V> {
  handoffId: string
  peer: string
  takenAt: number
  /** Queue keys in queue order, and per key what the backend keeps (bytes, or the JSON). */
  keys: string[]
  values: V[]
}

export class HandoffBook<V> {
  private readonly batches = new Map<string, HeldBatch<V>>()
  private readonly settling = new Set<string>()
  /** The queue keys of every stored batch. */
  private readonly keys = new Set<string>()
  private held = 0

  /** Events in every batch still stored, those being finished included. */
  get events(): number {
    return this.held
  }

  /** Throws if a stored batch has this id (checkHandoffId checked its form). */
  checkNew(handoffId: string): void {
    if (this.batches.has(handoffId)) {
      throw new BingeError('BINGE_INTERNAL', `handoff ${handoffId} is still pending`)
    }
  }

  add(batch: HeldBatch<V>): void {
    this.batches.set(batch.handoffId, batch)
    for (const key of batch.keys) this.keys.add(key)
    this.held += batch.keys.length
  }

  /** Is the batch stored and not being finished? */
  pending(handoffId: string): boolean {
    return this.batches.has(handoffId) && !this.settling.has(handoffId)
  }

  /** Is the event under this queue key in a stored batch? */
  holds(key: string): boolean {
    return this.keys.has(key)
  }

  /** Reserve a pending batch for finishing; undefined if unknown or already being finished. */
  claim(handoffId: string): HeldBatch<V> | undefined {
    const batch = this.batches.get(handoffId)
    if (batch === undefined || this.settling.has(handoffId)) return undefined
    this.settling.add(handoffId)
    return batch
  }

  /** The finishing write is done: the batch is gone from this node's store. */
  finish(handoffId: string): void {
    const batch = this.batches.get(handoffId)
    if (batch === undefined) return
    this.batches.delete(handoffId)
    this.settling.delete(handoffId)
    for (const key of batch.keys) this.keys.delete(key)
    this.held -= batch.keys.length
  }

  /** The finishing write failed: the batch is pending again. */
  release(handoffId: string): void {
    this.settling.delete(handoffId)
  }

  /** Every batch still stored, oldest taken first (ties by id, so the order is stable). */
  list(): Array<HeldBatch<V>> {
    return [...this.batches.values()].sort(
      (x, y) => x.takenAt - y.takenAt || (x.handoffId < y.handoffId ? -1 : x.handoffId > y.handoffId ? 1 : 0),
    )
  }

  clear(): void {
    this.batches.clear()
    this.settling.clear()
    this.keys.clear()
    this.held = 0
  }
}

/** Throws unless `handoffId` may name a batch: a non-empty string without NUL (the durable key layout, durable/keys.ts, needs that). */
export function checkHandoffId(handoffId: string): void {
  if (typeof handoffId !== 'string' || handoffId.length === 0 || handoffId.includes('\u0000')) {
    throw new BingeError('BINGE_INTERNAL', `handoff id ${JSON.stringify(handoffId)} is empty or holds NUL`)
  }
}

/** `max` as a count of events to take; 0 for anything not a positive number. */
export function takeLimit(max: number): number {
  const limit = Math.floor(max)
  return Math.max(limit, 0)
}

/**
 * The stored event if a handoff under `options` may take it, else why not: `hops` or
 * `size` (no handoff ever may) or `origin` (not to this peer; to another, maybe).
 */
export function handoffFit(json: string, options: TakeForHandoffOptions): { record?: EventRecord; why?: 'hops' | 'size' | 'origin' } {
  if (options.maxBytes !== undefined && json.length * 3 > options.maxBytes && Buffer.byteLength(json) > options.maxBytes)
    return { why: 'size' }
  const record = JSON.parse(json) as EventRecord
  if (!(record.hops < options.maxHops)) return { why: 'hops' }
  if (options.excludeOrigin !== undefined && record.origin === options.excludeOrigin) return { why: 'origin' }
  return { record }
}

/** Does one more event of `size` bytes keep a batch of `bytes` within `options.maxBytes`? (A first event always does: handoffFit checked it alone.) */
export function fitsBatch(size: number, bytes: number, count: number, options: TakeForHandoffOptions): boolean {
  return options.maxBytes === undefined || count === 0 || bytes + size <= options.maxBytes
}

/** The stored event if a handoff under `options` may take it. */
export function eligible(json: string, options: TakeForHandoffOptions): EventRecord | undefined {
  return handoffFit(json, options).record
}
