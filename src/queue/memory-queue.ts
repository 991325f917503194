// The memory queue: the durable queue's behaviour (dedupe, caps, buckets, order,
// dead letters, state) without the store, for `queue.mode: memory` and `binge run`.
// Nothing survives the process: a crash loses what it held (handing-off batches too),
// and a new instance starts empty. Events are kept as their JSON, so callers never
// share objects with the queue and the byte cap counts the same bytes as the durable
// queue does.

import { BingeError } from '../errors.js'
import { admit, isSeenWithin, prepare, toRecord } from './admission.js'
import { InflightClaims } from './claims.js'
import { deadletterOps } from './deadletters.js'
import { HandoffBook, eligible, fitsBatch, takeLimit } from './handoff-book.js'
import { seqString } from './keys.js'
import { Lifecycle } from './lifecycle.js'
import type {
  AckOptions,
  DeadLetter,
  DeadLetterInput,
  EnqueueOptions,
  EnqueueResult,
  EventQueue,
  EventRecord,
  HandoffBatch,
  QueueDepth,
  QueuedEvent,
  RecoveryReport,
  StateOp,
  TakeForHandoffOptions,
} from './types.js'
import { WorkSignal } from './work-signal.js'
import { sweepInterval } from './dedupe-sweeper.js'

export interface MemoryQueueOptions {
  maxEvents: number
  maxBytes: number
  dedupeWindowMs: number
  now?: () => number
}

export class MemoryQueue implements EventQueue {
  readonly mode = 'memory' as const
  private readonly life = new Lifecycle('memory queue')
  private readonly work = new WorkSignal()
  private readonly now: () => number
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
  private readonly deadletters = new Map<string, string>()
  private readonly state = new Map<string, string>()
  private nextSeq = 0
  private bytes = 0
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly options: MemoryQueueOptions) {
    this.now = options.now ?? Date.now
  }

  open(): Promise<RecoveryReport> {
    return this.life.open(async () => {
      this.timer = setInterval(() => this.sweepExpired(), sweepInterval(this.options.dedupeWindowMs))
      this.timer.unref()
      return { requeued: 0, unprocessed: 0, handingOff: 0, durationMs: 0 }
    })
  }

  close(): Promise<void> {
    return this.life.close(async () => {
      clearInterval(this.timer)
      this.work.notify()
    })
  }

  enqueue(events: EventRecord[], options?: EnqueueOptions): Promise<EnqueueResult[]> {
    return this.life.run(async () => {
      const prepared = prepare(events, options)
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
      for (const f of admitted.fresh) {
        if (f.indexed) {
          this.seenAt.delete(f.record.id) // re-inserted last, to keep the Map in time order
          this.seenAt.set(f.record.id, now)
          if (f.fingerprint === undefined) this.fingerprints.delete(f.record.id)
          else this.fingerprints.set(f.record.id, f.fingerprint)
        }
        this.push(f.json)
        this.bytes += f.bytes
      }
      if (admitted.fresh.length > 0) this.work.notify()
      return admitted.results
    })
  }

  dequeue(max: number): Promise<QueuedEvent[]> {
    return this.life.run(async () => {
      const out: QueuedEvent[] = []
      const limit = Math.floor(max)
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
    })
  }

  async waitForWork(signal?: AbortSignal): Promise<void> {
    this.life.assertOpen()
    return this.work.wait(() => this.events.size > 0 || this.life.state !== 'open', signal)
  }

  ack(event: QueuedEvent, options: AckOptions = {}): Promise<void> {
    return this.ackBatch([event], [options])
  }

  ackBatch(events: QueuedEvent[], acks: AckOptions[], state: StateOp[] = []): Promise<void> {
    return this.life.run(async () => {
      if (acks.length !== events.length)
        throw new BingeError('BINGE_INTERNAL', `ackBatch got ${events.length} events and ${acks.length} acks`)
      const values = this.inflight.claim(events.map((e) => e.key))
      const at = this.now()
      events.forEach((event, i) => {
        const json = values[i]!
        const failed = acks[i]!.deadletter ?? []
        if (failed.length > 0) {
          for (const op of deadletterOps(JSON.parse(json) as EventRecord, event.key, failed, at)) {
            if (op.type === 'put') this.deadletters.set(op.key, op.value)
          }
        }
        this.applyState(acks[i]!.state ?? [])
        this.bytes -= Buffer.byteLength(json)
      })
      this.applyState(state)
    })
  }

  nack(events: QueuedEvent[]): Promise<void> {
    return this.life.run(async () => {
      const keys = events.map((e) => e.key)
      const values = this.inflight.claim(keys)
      keys.forEach((key, i) => {
        this.insert(key, values[i]!)
      })
      if (keys.length > 0) this.work.notify()
    })
  }

  putDeadletter(event: EventRecord, letter: DeadLetterInput): Promise<void> {
    return this.life.run(async () => {
      for (const op of deadletterOps(toRecord(event), '', [letter], this.now()))
        if (op.type === 'put') this.deadletters.set(op.key, op.value)
    })
  }

  listDeadletter(limit?: number): Promise<DeadLetter[]> {
    return this.life.run(async () => {
      const keys = [...this.deadletters.keys()].sort().slice(0, limit ?? Infinity)
      return keys.map((key) => JSON.parse(this.deadletters.get(key)!) as DeadLetter)
    })
  }

  replayDeadletter(ids?: string[]): Promise<string[]> {
    return this.life.run(async () => {
      const wanted = ids === undefined ? undefined : new Set(ids)
      const replayed = new Set<string>()
      for (const key of [...this.deadletters.keys()].sort()) {
        const dl = JSON.parse(this.deadletters.get(key)!) as DeadLetter
        if (wanted !== undefined && !wanted.has(dl.event.id)) continue
        this.deadletters.delete(key)
        const json = JSON.stringify({ ...toRecord(dl.event), pipeline: dl.pipeline })
        this.push(json)
        this.bytes += Buffer.byteLength(json)
        replayed.add(dl.event.id)
      }
      if (replayed.size > 0) this.work.notify()
      return [...replayed]
    })
  }

  getState(key: string): Promise<unknown | undefined> {
    return this.life.run(async () => {
      const value = this.state.get(key)
      return value === undefined ? undefined : (JSON.parse(value) as unknown)
    })
  }

  scanState(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    return this.life.run(async () =>
      [...this.state.keys()]
        .filter((key) => key.startsWith(prefix))
        .sort()
        .map((key) => ({ key, value: JSON.parse(this.state.get(key)!) as unknown })),
    )
  }

  takeForHandoff(max: number, options: TakeForHandoffOptions): Promise<HandoffBatch | undefined> {
    return this.life.run(async () => {
      this.handoffs.checkNew(options.handoffId)
      const limit = takeLimit(max)
      const at: number[] = []
      const records: EventRecord[] = []
      let bytes = 0
      for (let i = this.order.length - 1; i >= this.head && at.length < limit; i--) {
        const json = this.events.get(this.order[i]!)!
        const record = eligible(json, options)
        if (record === undefined) continue
        if (!fitsBatch(json, bytes, at.length, options)) break
        at.push(i)
        records.push(record)
        bytes += Buffer.byteLength(json)
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
    })
  }

  completeHandoff(handoffId: string): Promise<void> {
    return this.life.run(async () => {
      const batch = this.handoffs.claim(handoffId)
      if (batch === undefined) return
      this.handoffs.finish(handoffId)
      for (const json of batch.values) this.bytes -= Buffer.byteLength(json)
    })
  }

  returnHandoff(handoffId: string): Promise<void> {
    return this.life.run(async () => {
      const batch = this.handoffs.claim(handoffId)
      if (batch === undefined) return
      this.handoffs.finish(handoffId)
      batch.keys.forEach((key, i) => {
        this.insert(key, batch.values[i]!)
      })
      this.work.notify()
    })
  }

  pendingHandoffs(): Promise<HandoffBatch[]> {
    return this.life.run(async () =>
      this.handoffs.list().map(({ handoffId, peer, takenAt, values }) => ({
        handoffId,
        peer,
        takenAt,
        events: values.map((json) => JSON.parse(json) as EventRecord),
      })),
    )
  }

  remember(ids: string[]): Promise<void> {
    return this.life.run(async () => {
      const now = this.now()
      for (const id of ids) {
        this.seenAt.delete(id) // re-inserted last, to keep the Map in time order
        this.seenAt.set(id, now)
      }
    })
  }

  seen(ids: string[]): Promise<boolean[]> {
    return this.life.run(async () => {
      const now = this.now()
      return ids.map((id) => isSeenWithin(this.seenAt.get(id), now, this.options.dedupeWindowMs))
    })
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

  /** Forget ids accepted longer ago than the window; returns how many. */
  sweepDedupe(): Promise<number> {
    return this.life.run(async () => this.sweepExpired())
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

  private applyState(ops: StateOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.state.set(op.key, JSON.stringify(op.value) ?? 'null')
      else this.state.delete(op.key)
    }
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
