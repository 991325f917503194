// The durable queue: one LevelDB under `dir` holding the unprocessed, in-flight and
// dead-letter buckets, the dedupe index, meta and pipeline state (layout: keys.ts).
//
// Design constraints:
// - An accepted event is in exactly one bucket after any crash: every move between
//   buckets is a del + put in one atomic batch, and enqueue writes the event and its
//   dedupe entry in the same batch.
// - enqueue resolves only after its batch is written with the configured sync (group
//   commit: concurrent calls share one fsync). Nothing else fsyncs: dequeue, ack, nack
//   and recovery are atomic batches whose loss on power failure only re-delivers
//   (in-flight goes back to unprocessed at open), and kill -9 keeps whatever LevelDB
//   already handed to the OS.
// - New queue keys become visible in key order (enqueue groups and replays take them
//   one at a time in the group-commit chain), nack moves the dequeue cursor back, and
//   recovery resets it: so every unprocessed key is at or after the cursor, and
//   dequeue never rescans the tombstones of events already handed out.
// - The in-memory counters are exact: they change only after the batch they describe
//   is written, and a key is claimed (claims.ts) before its ack or nack is written,
//   so the same event cannot be finished twice.

import { Level } from 'level'
import { type PreparedEvent, prepare, toRecord } from './admission.js'
import { InflightClaims } from './claims.js'
import { deadletterOps, findDeadletters, replayOps } from './deadletters.js'
import { DedupeSweeper, sweepChunk, sweepInterval } from './dedupe-sweeper.js'
import { type Outcome, GroupCommit } from './group-commit.js'
import * as k from './keys.js'
import type { Op } from './keys.js'
import { planEnqueue } from './enqueue-plan.js'
import { Lifecycle } from './lifecycle.js'
import { Mutex } from './mutex.js'
import { checkFormat, recover } from './recovery.js'
import type {
  AckOptions,
  DeadLetter,
  EnqueueResult,
  EventQueue,
  EventRecord,
  QueueDepth,
  QueuedEvent,
  RecoveryReport,
} from './types.js'
import { WorkSignal } from './work-signal.js'

export type SyncMode = 'batch' | 'always' | 'none'

export interface DurableQueueOptions {
  dir: string
  sync: SyncMode
  maxEvents: number
  maxBytes: number
  dedupeWindowMs: number
  /** Clock for dedupe and dead-letter times; tests inject one. */
  now?: () => number
  /** Called when the background dedupe sweep fails (it retries on its next tick). */
  onSweepError?: (err: unknown) => void
}

export interface DurableQueueStats {
  /** Batches written by enqueue groups. */
  enqueueWrites: number
  /** Enqueue calls that reached the group commit. */
  enqueueCalls: number
  /** Every batch written, of any kind. */
  writes: number
  /** Batches written with fsync. */
  syncWrites: number
}

const REPLAY_CHUNK = 1000

export class DurableQueue implements EventQueue {
  readonly mode = 'durable' as const
  /** Made by open(): a Level opens itself as soon as it is constructed. */
  private db!: Level<string, string>
  private readonly life = new Lifecycle('durable queue')
  private readonly writer: GroupCommit<PreparedEvent[], EnqueueResult[]>
  /** dequeue and nack: both move the cursor. */
  private readonly moves = new Mutex()
  /** Replays: two must not both take the same dead letter. */
  private readonly replays = new Mutex()
  private readonly work = new WorkSignal()
  private readonly sweeper: DedupeSweeper
  private readonly now: () => number
  private readonly counts: QueueDepth = { unprocessed: 0, inflight: 0, deadletter: 0, bytes: 0 }
  /** Bytes of each in-flight event, by queue key. */
  private readonly inflight = new InflightClaims<number>()
  private nextSeq = 0
  /** Dequeue reads unprocessed keys from here on (inclusive). */
  private cursor = k.ranges.unprocessed.gte
  private readonly counters: DurableQueueStats = { enqueueWrites: 0, enqueueCalls: 0, writes: 0, syncWrites: 0 }

  constructor(private readonly options: DurableQueueOptions) {
    this.now = options.now ?? Date.now
    this.writer = new GroupCommit((calls) => this.commitGroup(calls), options.sync === 'always' ? 1 : Infinity)
    this.sweeper = new DedupeSweeper({
      intervalMs: sweepInterval(options.dedupeWindowMs),
      sweep: () => this.writer.exclusive(() => sweepChunk(this.db, this.now() - this.options.dedupeWindowMs)),
      onError: options.onSweepError ?? (() => undefined),
    })
  }

  open(): Promise<RecoveryReport> {
    return this.life.open(async () => {
      const started = performance.now()
      // A 16 MB write buffer (LevelDB's default is 4 MB) flushes and compacts a quarter
      // as often under a steady ingest: measured ~20% less CPU per event written.
      this.db = new Level<string, string>(this.options.dir, { valueEncoding: 'utf8', writeBufferSize: 16 << 20 })
      await this.db.open()
      try {
        await checkFormat(this.db)
        const r = await recover(this.db)
        Object.assign(this.counts, { unprocessed: r.unprocessed, inflight: 0, deadletter: r.deadletter, bytes: r.bytes })
        this.nextSeq = r.nextSeq
        this.cursor = k.ranges.unprocessed.gte
        this.inflight.clear()
        this.sweeper.start()
        return { requeued: r.requeued, unprocessed: r.unprocessed, durationMs: performance.now() - started }
      } catch (err) {
        await this.db.close()
        throw err
      }
    })
  }

  close(): Promise<void> {
    return this.life.close(async () => {
      await this.sweeper.stop()
      await this.writer.drain()
      this.work.notify()
      await this.db.close()
    })
  }

  enqueue(events: EventRecord[]): Promise<EnqueueResult[]> {
    return this.life.run(async () => {
      if (events.length === 0) return []
      const prepared = prepare(events)
      this.counters.enqueueCalls++
      return this.writer.submit(prepared)
    })
  }

  dequeue(max: number): Promise<QueuedEvent[]> {
    return this.life.run(() =>
      this.moves.run(async () => {
        const limit = Math.floor(max)
        if (!(limit > 0) || this.counts.unprocessed === 0) return []
        const range = { gte: this.cursor, lt: k.ranges.unprocessed.lt }
        const entries = await this.db.iterator({ ...range, limit, highWaterMarkBytes: k.READ_AHEAD }).all()
        if (entries.length === 0) return []
        const ops: Op[] = []
        const events: QueuedEvent[] = []
        for (const [dbKey, value] of entries) {
          const key = k.queueKeyOf(dbKey)
          ops.push({ type: 'del', key: dbKey }, { type: 'put', key: k.inflightKey(key), value })
          events.push({ ...(JSON.parse(value) as EventRecord), key })
        }
        await this.write(ops, false)
        entries.forEach(([, value], i) => this.inflight.add(events[i]!.key, Buffer.byteLength(value)))
        this.cursor = `${entries[entries.length - 1]![0]}\u0000`
        this.counts.unprocessed -= entries.length
        this.counts.inflight += entries.length
        return events
      }),
    )
  }

  async waitForWork(signal?: AbortSignal): Promise<void> {
    this.life.assertOpen()
    return this.work.wait(() => this.counts.unprocessed > 0 || this.life.state !== 'open', signal)
  }

  ack(event: QueuedEvent, options: AckOptions = {}): Promise<void> {
    return this.life.run(async () => {
      const bytes = this.inflight.claim([event.key])[0]!
      let added = 0
      try {
        const ops: Op[] = [{ type: 'del', key: k.inflightKey(event.key) }]
        for (const op of options.state ?? []) {
          ops.push(
            op.type === 'put'
              ? { type: 'put', key: k.stateKey(op.key), value: JSON.stringify(op.value) ?? 'null' }
              : { type: 'del', key: k.stateKey(op.key) },
          )
        }
        const failed = options.deadletter ?? []
        if (failed.length > 0) {
          // The event as accepted, not as a step may have changed the caller's object.
          const stored = await this.db.get(k.inflightKey(event.key))
          const record = stored === undefined ? toRecord(event) : (JSON.parse(stored) as EventRecord)
          const letters = deadletterOps(record, event.key, failed, this.now())
          ops.push(...letters)
          added = letters.length
        }
        await this.write(ops, false)
      } catch (err) {
        this.inflight.restore([event.key], [bytes])
        throw err
      }
      this.counts.inflight--
      this.counts.bytes -= bytes
      this.counts.deadletter += added
    })
  }

  nack(events: QueuedEvent[]): Promise<void> {
    return this.life.run(() =>
      this.moves.run(async () => {
        if (events.length === 0) return
        const keys = events.map((e) => e.key)
        const sizes = this.inflight.claim(keys)
        try {
          const stored = await this.db.getMany(keys.map(k.inflightKey))
          const ops: Op[] = []
          keys.forEach((key, i) => {
            // The stored copy, not the caller's: a step may have changed the object.
            const value = stored[i] ?? JSON.stringify(toRecord(events[i]!))
            ops.push({ type: 'del', key: k.inflightKey(key) }, { type: 'put', key: k.unprocessedKey(key), value })
          })
          await this.write(ops, false)
        } catch (err) {
          this.inflight.restore(keys, sizes)
          throw err
        }
        const oldest = k.unprocessedKey([...keys].sort()[0]!)
        if (oldest < this.cursor) this.cursor = oldest
        this.counts.inflight -= keys.length
        this.counts.unprocessed += keys.length
        this.work.notify()
      }),
    )
  }

  listDeadletter(limit?: number): Promise<DeadLetter[]> {
    return this.life.run(async () => {
      const values = await this.db.values({ ...k.ranges.deadletter, limit: limit ?? -1, highWaterMarkBytes: k.READ_AHEAD }).all()
      return values.map((v) => JSON.parse(v) as DeadLetter)
    })
  }

  replayDeadletter(ids?: string[]): Promise<string[]> {
    return this.life.run(() =>
      this.replays.run(async () => {
        const found = await findDeadletters(this.db, ids)
        const replayed = new Set<string>()
        for (let i = 0; i < found.length; i += REPLAY_CHUNK) {
          const chunk = found.slice(i, i + REPLAY_CHUNK)
          // Inside the group-commit chain: the sequence numbers it takes must become
          // visible in order with those of enqueue groups (see the cursor constraint).
          await this.writer.exclusive(() => this.replayChunk(chunk))
          for (const [, dl] of chunk) replayed.add(dl.event.id)
        }
        return [...replayed]
      }),
    )
  }

  getState(key: string): Promise<unknown | undefined> {
    return this.life.run(async () => {
      const value = await this.db.get(k.stateKey(key))
      return value === undefined ? undefined : (JSON.parse(value) as unknown)
    })
  }

  depth(): QueueDepth {
    return { ...this.counts }
  }

  stats(): DurableQueueStats {
    return { ...this.counters }
  }

  /** Sweep expired dedupe entries now (the timer does it in the background). */
  sweepDedupe(): Promise<number> {
    return this.life.run(() => this.sweeper.runOnce())
  }

  private async commitGroup(calls: PreparedEvent[][]): Promise<Array<Outcome<EnqueueResult[]>>> {
    const plan = await planEnqueue(this.db, calls, {
      now: this.now(),
      dedupeWindowMs: this.options.dedupeWindowMs,
      room: {
        events: this.options.maxEvents - this.counts.unprocessed - this.counts.inflight,
        bytes: this.options.maxBytes - this.counts.bytes,
      },
      nextSeq: this.nextSeq,
    })
    if (plan.ops.length === 0) return plan.outcomes
    // Taken before the write: if it fails, the numbers are skipped, never reused.
    this.nextSeq = plan.nextSeq
    await this.write(plan.ops, this.options.sync !== 'none')
    this.counters.enqueueWrites++
    this.counts.unprocessed += plan.added
    this.counts.bytes += plan.addedBytes
    this.work.notify()
    return plan.outcomes
  }

  private async replayChunk(chunk: Array<[string, DeadLetter]>): Promise<void> {
    const replay = replayOps(chunk, this.nextSeq)
    this.nextSeq = replay.nextSeq
    await this.write(replay.ops, false)
    this.counts.deadletter -= chunk.length
    this.counts.unprocessed += chunk.length
    this.counts.bytes += replay.bytes
    this.work.notify()
  }

  private async write(ops: Op[], sync: boolean): Promise<void> {
    await this.db.batch(ops, { sync })
    this.counters.writes++
    if (sync) this.counters.syncWrites++
  }
}
