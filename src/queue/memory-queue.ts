// The memory queue: the durable queue's behaviour (dedupe, caps, buckets, order,
// dead letters, state) without the store, for `queue.mode: memory`. The public surface
// and its checks are AbstractQueue's; this is the storage, in Maps. Nothing survives
// the process: a crash loses what it held (handing-off batches too), and a new instance
// starts empty. Events are kept as their JSON, so callers never share objects with the
// queue and the byte cap counts the same bytes as the durable queue does.

import { BingeError } from '../errors.js'
import { AbstractQueue } from './abstract-queue.js'
import { type PreparedEvent, admit, isSeenWithin, remembered, sweepInterval } from './admission.js'
import { InflightClaims } from './claims.js'
import { deadLetters, replayJson } from './dead-letter.js'
import { HandoffBook, eligible, fitsBatch } from './handoff-book.js'
import { seqString } from './queue-key.js'
import { applyStateOps } from './state-ops.js'
import type {
  AckOptions,
  DeadLetter,
  DeadLetterInput,
  EnqueueResult,
  EventRecord,
  HandoffBatch,
  QueueDepth,
  QueuedEvent,
  RecoveryReport,
  StateOp,
  TakeForHandoffOptions,
} from './types.js'

export interface MemoryQueueOptions {
  maxEvents: number
  maxBytes: number
  dedupeWindowMs: number
  now?: () => number
}

export class MemoryQueue extends AbstractQueue {
  readonly mode = 'memory' as const
  /** Dedupe index, id -> time accepted; Map order is (about) time order. */
  private readonly seenAt = new Map<string, number>()
  /** Fingerprints of ids indexed with one (EnqueueOptions.fingerprint). */
  private readonly fingerprints = new Map<string, string>()
  /** Unprocessed keys in order, from `head` on; values in `events`. */
  private order: string[] = []
  private head = 0
  private readonly events = new Map<string, string>()
  private readonly inflight = new InflightClaims<string>()
  /** Pending handoff batches, with each event's JSON. */
  private readonly handoffs = new HandoffBook<string>()
  /** Dead letters by letter id (dead-letter.ts), as their JSON. */
  private readonly deadletters = new Map<string, string>()
  /** State entries as their JSON (state-ops.ts). */
  private readonly state = new Map<string, string>()
  private nextSeq = 0
  private bytes = 0
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly options: MemoryQueueOptions) {
    super('memory queue', options.now)
  }

  protected async _open(): Promise<RecoveryReport> {
    this.timer = setInterval(() => this.sweepExpired(), sweepInterval(this.options.dedupeWindowMs))
    this.timer.unref()
    return { requeued: 0, unprocessed: 0, handingOff: 0, durationMs: 0 }
  }

  protected async _close(): Promise<void> {
    clearInterval(this.timer)
  }

  protected async _enqueue(prepared: PreparedEvent[]): Promise<EnqueueResult[]> {
    const now = this.now()
    const admitted = admit(prepared, {
      now,
      dedupeWindowMs: this.options.dedupeWindowMs,
      seenAt: (id) => this.seenAt.get(id),
      fingerprintOf: (id) => this.fingerprints.get(id),
      taken: new Set(),
      room: {
        events: this.options.maxEvents - this.events.size - this.inflight.size - this.handoffs.events,
        bytes: this.options.maxBytes - this.bytes,
      },
    })
    if (admitted instanceof BingeError) throw admitted
    if (admitted.batch !== undefined) {
      this.seenAt.delete(admitted.batch)
      this.seenAt.set(admitted.batch, now)
    }
    for (const fresh of admitted.fresh) {
      if (remembered(fresh)) {
        this.seenAt.delete(fresh.record.id) // re-inserted last, to keep the Map in time order
        this.seenAt.set(fresh.record.id, now)
        if (fresh.fingerprint === undefined) this.fingerprints.delete(fresh.record.id)
        else this.fingerprints.set(fresh.record.id, fresh.fingerprint)
      }
      this.push(fresh.json)
      this.bytes += fresh.bytes
    }
    if (admitted.fresh.length > 0) this.work.notify()
    return admitted.results
  }

  protected async _dequeue(limit: number): Promise<QueuedEvent[]> {
    const out: QueuedEvent[] = []
    while (out.length < limit && this.head < this.order.length) {
      const key = this.order[this.head++]!
      const json = this.events.get(key)!
      this.events.delete(key)
      this.inflight.add(key, json)
      out.push({ ...(JSON.parse(json) as EventRecord), key })
    }
    // Drop the consumed prefix now and then rather than shifting on every dequeue.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head)
      this.head = 0
    }
    return out
  }

  protected _hasWork(): boolean {
    return this.events.size > 0
  }

  protected async _ackBatch(events: QueuedEvent[], acks: AckOptions[], state: StateOp[]): Promise<void> {
    const values = this.inflight.claim(events.map((event) => event.key))
    const at = this.now()
    events.forEach((event, i) => {
      const json = values[i]!
      const failed = acks[i]!.deadletter ?? []
      if (failed.length > 0) {
        for (const [letterId, letter] of deadLetters(JSON.parse(json) as EventRecord, event.key, failed, at)) {
          this.deadletters.set(letterId, letter)
        }
      }
      applyStateOps(acks[i]!.state ?? [], this.state)
      this.bytes -= Buffer.byteLength(json)
    })
    applyStateOps(state, this.state)
  }

  protected async _nack(events: QueuedEvent[]): Promise<void> {
    const keys = events.map((event) => event.key)
    const values = this.inflight.claim(keys)
    keys.forEach((key, i) => {
      this.insert(key, values[i]!)
    })
    this.work.notify()
  }

  protected async _listDeadletter(limit: number): Promise<string[]> {
    return [...this.deadletters.keys()]
      .sort()
      .slice(0, limit)
      .map((letterId) => this.deadletters.get(letterId)!)
  }

  protected async _putDeadletter(record: EventRecord, letter: DeadLetterInput): Promise<void> {
    for (const [letterId, json] of deadLetters(record, '', [letter], this.now())) this.deadletters.set(letterId, json)
  }

  protected async _replayDeadletter(ids: string[] | undefined): Promise<string[]> {
    const wanted = ids === undefined ? undefined : new Set(ids)
    const replayed = new Set<string>()
    for (const letterId of [...this.deadletters.keys()].sort()) {
      const letter = JSON.parse(this.deadletters.get(letterId)!) as DeadLetter
      if (wanted !== undefined && !wanted.has(letter.event.id)) continue
      this.deadletters.delete(letterId)
      const json = replayJson(letter)
      this.push(json)
      this.bytes += Buffer.byteLength(json)
      replayed.add(letter.event.id)
    }
    if (replayed.size > 0) this.work.notify()
    return [...replayed]
  }

  protected async _getState(key: string): Promise<string | undefined> {
    return this.state.get(key)
  }

  protected async _scanState(prefix: string): Promise<Array<[string, string]>> {
    return [...this.state.keys()]
      .filter((key) => key.startsWith(prefix))
      .sort()
      .map((key) => [key, this.state.get(key)!])
  }

  protected async _takeForHandoff(limit: number, options: TakeForHandoffOptions): Promise<HandoffBatch | undefined> {
    this.handoffs.checkNew(options.handoffId)
    const at: number[] = []
    const records: EventRecord[] = []
    let bytes = 0
    for (let i = this.order.length - 1; i >= this.head && at.length < limit; i--) {
      const json = this.events.get(this.order[i]!)!
      const record = eligible(json, options)
      if (record === undefined) continue
      const size = Buffer.byteLength(json)
      if (!fitsBatch(size, bytes, at.length, options)) break
      at.push(i)
      records.push(record)
      bytes += size
    }
    if (at.length === 0) return undefined
    // Found newest first: the batch lists them in queue order.
    at.reverse()
    records.reverse()
    const keys = at.map((i) => this.order[i]!)
    const values = keys.map((key) => this.events.get(key)!)
    for (const key of keys) this.events.delete(key)
    this.removeFromOrder(at)
    const { handoffId, peer } = options
    const takenAt = this.now()
    this.handoffs.add({ handoffId, peer, takenAt, keys, values })
    return { handoffId, peer, takenAt, events: records }
  }

  protected async _completeHandoff(handoffId: string): Promise<void> {
    const batch = this.handoffs.claim(handoffId)
    if (batch === undefined) return
    this.handoffs.finish(handoffId)
    for (const json of batch.values) this.bytes -= Buffer.byteLength(json)
  }

  protected async _returnHandoff(handoffId: string): Promise<void> {
    const batch = this.handoffs.claim(handoffId)
    if (batch === undefined) return
    this.handoffs.finish(handoffId)
    batch.keys.forEach((key, i) => {
      this.insert(key, batch.values[i]!)
    })
    this.work.notify()
  }

  protected async _pendingHandoffs(): Promise<HandoffBatch[]> {
    return this.handoffs.list().map(({ handoffId, peer, takenAt, values }) => ({
      handoffId,
      peer,
      takenAt,
      events: values.map((json) => JSON.parse(json) as EventRecord),
    }))
  }

  protected async _remember(ids: string[]): Promise<void> {
    const now = this.now()
    for (const id of ids) {
      this.seenAt.delete(id) // re-inserted last, to keep the Map in time order
      this.seenAt.set(id, now)
    }
  }

  protected async _seen(ids: string[]): Promise<boolean[]> {
    const now = this.now()
    return ids.map((id) => isSeenWithin(this.seenAt.get(id), now, this.options.dedupeWindowMs))
  }

  /** Memory mode keeps nothing on disk: queue.minFreeDisk does not apply. */
  diskStatus(): undefined {
    return undefined
  }

  depth(): QueueDepth {
    return {
      unprocessed: this.events.size,
      inflight: this.inflight.size,
      handingOff: this.handoffs.events,
      deadletter: this.deadletters.size,
      bytes: this.bytes,
    }
  }

  protected async _sweepDedupe(): Promise<number> {
    return this.sweepExpired()
  }

  private sweepExpired(): number {
    const cutoff = this.now() - this.options.dedupeWindowMs
    let removed = 0
    for (const [id, at] of this.seenAt) {
      if (at > cutoff) break
      this.seenAt.delete(id)
      this.fingerprints.delete(id)
      removed++
    }
    return removed
  }

  private push(json: string): void {
    const key = seqString(this.nextSeq++)
    this.events.set(key, json)
    this.order.push(key)
  }

  /** Drop taken positions (ascending) of the order: a cut when they are its tail, as they mostly are. */
  private removeFromOrder(at: number[]): void {
    if (at[0] === this.order.length - at.length) {
      this.order.length = at[0]
      return
    }
    const gone = new Set(at)
    this.order = this.order.filter((_, i) => !gone.has(i))
  }

  /** Put a key back in its place in the order (nack and returnHandoff return old keys). */
  private insert(key: string, json: string): void {
    let lo = this.head
    let hi = this.order.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.order[mid]! < key) lo = mid + 1
      else hi = mid
    }
    this.order.splice(lo, 0, key)
    this.events.set(key, json)
  }
}
