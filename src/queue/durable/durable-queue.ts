// The durable queue: one LevelDB under `dir` holding the unprocessed, in-flight,
// handing-off and dead-letter buckets, the dedupe index, meta and pipeline state. The
// public surface, the lifecycle and the argument checks are AbstractQueue's
// (../abstract-queue.ts); this is the storage. Its layout (keys.ts) and invariants are
// docs/design.md §4, in short: every move between buckets is one atomic batch; only
// enqueues and handoff headers are fsync'd before they resolve; keys become readable
// in key order (pending-groups.ts); counters change only after the write they describe;
// a full disk is a state (store-health.ts reopens the store without a restart, and
// disk-space.ts keeps `minFreeDisk` free by refusing new events first).

import { Level } from 'level'
import { AbstractQueue } from '../abstract-queue.js'
import { type PreparedEvent, dedupeIds, lookUpMadeIds, sweepInterval } from '../admission.js'
import { InflightClaims } from '../claims.js'
import { type Outcome, GroupCommit } from '../group-commit.js'
import { HandoffBook, type HeldBatch } from '../handoff-book.js'
import { Mutex } from '../mutex.js'
import { seqString } from '../queue-key.js'
import type {
  AckOptions,
  DeadLetter,
  DeadLetterInput,
  DiskStatus,
  EnqueueResult,
  EventRecord,
  HandoffBatch,
  QueueDepth,
  QueuedEvent,
  RecoveryReport,
  StateOp,
  TakeForHandoffOptions,
} from '../types.js'
import { ackDeadletterOps, deadletterPuts, findDeadletters, replayOps } from './deadletter-store.js'
import { rememberOps, seenWithin } from './dedupe-index.js'
import { DedupeSweeper, sweepChunk } from './dedupe-sweeper.js'
import { DiskSpace, SpaceReclaimer, compactRange, lowDiskError, volumeOf, writeBufferFor } from './disk-space.js'
import type { DurableQueueOptions, DurableQueueStats } from './durable-options.js'
import { type EnqueuePlan, planEnqueue } from './enqueue-plan.js'
import { PendingGroups, type Settle, groupsInFlight } from './pending-groups.js'
import { CoveredSpans, completeOps, findNewest, readFree, readPending, returnOps, takeOps } from './handoff-store.js'
import { type Op, READ_AHEAD, queueKeyOf, ranges, stateKey, stateKeyOf, stateOps, stateRangeOf, unprocessedKey } from './keys.js'
import { openLayout, reconcile, recover } from './recovery.js'
import { type Kept, RecentEvents } from './recent-events.js'
import { StoreHealth } from './store-health.js'
import { StoreWriter } from './store-writer.js'

const REPLAY_CHUNK = 1000
const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0)

export class DurableQueue extends AbstractQueue {
  readonly mode = 'durable' as const
  /** Made by open(): a Level opens itself as soon as it is constructed. */
  private db!: Level<string, string>
  private readonly writer: GroupCommit<PreparedEvent[], EnqueueResult[]>
  /** dequeue, nack, takeForHandoff, returnHandoff, completeHandoff: each moves events out of or into unprocessed, or deletes some. */
  private readonly moves = new Mutex()
  /** Replays: two must not both take the same dead letter. */
  private readonly replays = new Mutex()
  private readonly sweeper: DedupeSweeper
  /** handingOff is `handoffs.events`. */
  private readonly counts: Omit<QueueDepth, 'handingOff'> = { unprocessed: 0, inflight: 0, deadletter: 0, bytes: 0 }
  /** Bytes of each in-flight event, by queue key; the event stays under its unprocessed key. */
  private readonly inflight = new InflightClaims<number>()
  /** Is the event under this queue key taken, in flight or by a pending handoff batch? Dequeue and takes pass it by. */
  private readonly held = (key: string): boolean => this.inflight.has(key) || this.handoffs.holds(key)
  /** Pending handoff batches, with the bytes of each event; their events stay in unprocessed, held. */
  private readonly handoffs = new HandoffBook<number>()
  /** The newest events as written, so a dequeue that keeps up reads no LevelDB (recent-events.ts). */
  private readonly recent = new RecentEvents()
  /** Where takes need not read again (handoff-store.ts). */
  private readonly covered = new CoveredSpans()
  private nextSeq = 0
  /** Enqueue groups planned and not yet visible (pending-groups.ts). */
  private readonly pending = new PendingGroups()
  /** Enqueue groups plan one after another, so each sees the room and ids of those before it. */
  private readonly planning = new Mutex()
  /** Dequeue reads unprocessed keys from here on (inclusive). */
  private cursor = ranges.unprocessed.gte
  /** Until then, ids binge made are looked up in batches too (recovery.ts, openLayout). */
  private madeIdsLookedUpUntil = 0
  private readonly counters: Pick<DurableQueueStats, 'enqueueWrites' | 'enqueueCalls'> = { enqueueWrites: 0, enqueueCalls: 0 }
  private readonly disk: DiskSpace
  private readonly reclaimer: SpaceReclaimer
  private readonly health: StoreHealth
  private readonly store: StoreWriter

  constructor(private readonly options: DurableQueueOptions) {
    super('durable queue', options.now)
    this.writer = new GroupCommit(
      (calls) => this.commitGroup(calls),
      options.sync === 'always' ? 1 : Infinity,
      groupsInFlight(options.sync),
    )
    this.sweeper = new DedupeSweeper({
      intervalMs: sweepInterval(options.dedupeWindowMs),
      sweep: () =>
        this.writer.exclusive(async () => {
          this.health.assertWritable()
          try {
            return await sweepChunk(this.db, this.now() - this.options.dedupeWindowMs)
          } catch (err) {
            throw this.health.failed(err)
          }
        }),
      onError: options.onSweepError ?? (() => undefined),
    })
    this.disk = new DiskSpace({ dir: options.dir, minFree: options.minFreeDisk, onChange: options.onDiskChange })
    this.reclaimer = new SpaceReclaimer({
      // Emptied: all of it; else what lies behind the dequeue cursor, where acks deleted.
      compact: () => compactRange(this.db, ranges.unprocessed.gte, this.isEmpty() ? ranges.unprocessed.lt : this.cursor),
      low: () => this.disk.belowWatermark,
      minFreeBytes: () => this.disk.state().minFreeBytes,
      refresh: () => this.disk.refresh(),
      onError: (err) => this.health.failed(err),
    })
    this.health = new StoreHealth({
      reopen: () => this.reopen(),
      onFault: (err) => {
        void this.disk.refresh()
        this.work.notify()
        options.onStoreFault?.(err)
      },
      onHealed: options.onStoreHealed,
      onRetry: options.onStoreHealRetry,
    })
    this.store = new StoreWriter({
      db: () => this.db,
      health: this.health,
      sync: options.sync,
      ackSyncMs: options.ackSyncMs,
      run: (write) => this.life.run(write),
      now: () => this.now(),
    })
  }

  protected async _open(): Promise<RecoveryReport> {
    const started = performance.now()
    // A 16 MB write buffer (LevelDB's default is 4 MB) flushes and compacts a quarter
    // as often under a steady ingest: measured ~20% less CPU per event written. Less
    // on a small volume: see writeBufferFor.
    const { totalBytes } = await volumeOf(this.options.dir)
    this.db = new Level<string, string>(this.options.dir, { valueEncoding: 'utf8', writeBufferSize: writeBufferFor(totalBytes) })
    await this.db.open()
    try {
      this.madeIdsLookedUpUntil = await openLayout(this.db, this.now(), this.options.dedupeWindowMs)
      const recovered = await recover(this.db)
      Object.assign(this.counts, {
        unprocessed: recovered.unprocessed,
        inflight: 0,
        deadletter: recovered.deadletter,
        bytes: recovered.bytes,
      })
      this.nextSeq = recovered.nextSeq
      this.recent.reset(this.nextSeq)
      this.cursor = ranges.unprocessed.gte
      this.inflight.clear()
      this.handoffs.clear()
      this.covered.clear()
      for (const batch of recovered.handoffs) this.handoffs.add(batch)
      await this.disk.start()
      this.sweeper.start()
      return {
        requeued: recovered.requeued,
        unprocessed: recovered.unprocessed,
        handingOff: recovered.handingOff,
        durationMs: performance.now() - started,
      }
    } catch (err) {
      await this.db.close()
      throw err
    }
  }

  protected async _close(): Promise<void> {
    this.store.stop()
    this.health.stop()
    this.disk.stop()
    await this.sweeper.stop()
    await this.reclaimer.idle()
    await this.writer.drain()
    await this.db.close()
  }

  /** A full disk comes out of any call as a 503, never as a LevelDB error (store-health.ts). */
  protected override _mapError(err: unknown): unknown {
    return this.health.failed(err)
  }

  /** After a fault: reopen the store with moves and enqueues held off, and lay what memory knows over it (reconcile). */
  private reopen(): Promise<void> {
    return this.moves.run(() =>
      this.writer.exclusive(async () => {
        if (this.life.state !== 'open') return
        await this.reclaimer.idle()
        await this.db.close()
        await this.db.open()
        const reconciled = await reconcile(this.db, this.inflight.entries(), this.handoffs.list(), this.nextSeq)
        this.counts.unprocessed = reconciled.unprocessed
        this.counts.bytes = reconciled.bytes
        this.nextSeq = reconciled.nextSeq
        this.recent.reset(this.nextSeq)
        this.cursor = ranges.unprocessed.gte
        this.covered.clear()
        void this.disk.refresh()
        this.work.notify()
      }),
    )
  }

  protected async _enqueue(prepared: PreparedEvent[]): Promise<EnqueueResult[]> {
    this.counters.enqueueCalls++
    if (this.now() < this.madeIdsLookedUpUntil) lookUpMadeIds(prepared)
    return this.writer.submit(prepared)
  }

  protected _dequeue(limit: number): Promise<QueuedEvent[]> {
    return this.moves.run(async () => {
      // Faulted: nothing may be written until the store reopens (waitForWork waits for it).
      if (this.counts.unprocessed === 0 || this.health.faulted) return []
      const found =
        this.recent.read(this.cursor, this.pending.visibleSeq(this.nextSeq), limit, this.held) ??
        (await readFree(this.db, this.cursor, this.visibleEnd(), limit, this.held))
      // Past the held keys read over too: a nack or a returned batch moves the cursor back.
      if (found.last !== '') this.cursor = `${found.last}\u0000`
      if (found.entries.length === 0) return []
      // Nothing is written: an in-flight event stays under its unprocessed key, held here
      // in memory, so a crash or a stop leaves it unprocessed (docs/design.md §4).
      const events: QueuedEvent[] = []
      for (const [dbKey, value, kept] of found.entries as Array<[string, string, Kept?]>) {
        const key = queueKeyOf(dbKey)
        events.push((kept && this.recent.handOut(kept, key)) ?? { ...(JSON.parse(value) as EventRecord), key })
        this.inflight.add(key, kept?.bytes ?? Buffer.byteLength(value))
      }
      this.counts.unprocessed -= found.entries.length
      this.counts.inflight += found.entries.length
      return events
    })
  }

  /** Events under these queue keys, of `bytes` in all, were just deleted (acked, or handed off). */
  private gone(keys: string[], bytes: number): void {
    this.counts.bytes -= bytes
    this.recent.deleted(keys.map(Number))
    this.reclaimer.deleted(bytes, this.isEmpty())
  }

  private isEmpty(): boolean {
    return this.counts.unprocessed + this.counts.inflight + this.handoffs.events === 0
  }

  protected _hasWork(): boolean {
    return this.counts.unprocessed > 0 && !this.health.faulted
  }

  protected _ackBatch(events: QueuedEvent[], acks: AckOptions[], state: StateOp[]): Promise<void> {
    // Under the moves mutex: it deletes unprocessed keys (see _completeHandoff).
    return this.moves.run(async () => {
      const keys = events.map((event) => event.key)
      const sizes = this.inflight.claim(keys)
      let added = 0
      try {
        const ops: Op[] = keys.map((key) => ({ type: 'del', key: unprocessedKey(key) }))
        for (const ack of acks) ops.push(...stateOps(ack.state ?? []))
        const letters = await ackDeadletterOps(this.db, events, acks, this.now())
        ops.push(...letters)
        added = letters.length
        ops.push(...stateOps(state))
        await this.write(ops, false)
      } catch (err) {
        this.inflight.restore(keys, sizes)
        throw err
      }
      this.counts.inflight -= keys.length
      this.counts.deadletter += added
      this.gone(keys, sum(sizes))
    })
  }

  protected _nack(events: QueuedEvent[]): Promise<void> {
    return this.moves.run(async () => {
      const keys = events.map((event) => event.key)
      // The stored copy never moved: letting go of the claims frees it, as accepted
      // (a step may have changed the caller's object, not the store's).
      this.inflight.claim(keys)
      this.backOver([...keys].sort())
      this.counts.inflight -= keys.length
      this.counts.unprocessed += keys.length
      this.work.notify()
    })
  }

  protected _listDeadletter(limit: number): Promise<string[]> {
    return this.db.values({ ...ranges.deadletter, limit, highWaterMarkBytes: READ_AHEAD }).all()
  }

  protected async _putDeadletter(record: EventRecord, letter: DeadLetterInput): Promise<void> {
    await this.write(deadletterPuts(record, '', [letter], this.now()), this.options.sync !== 'none')
    this.counts.deadletter++
  }

  protected _replayDeadletter(ids: string[] | undefined): Promise<string[]> {
    return this.replays.run(async () => {
      const found = await findDeadletters(this.db, ids)
      const replayed = new Set<string>()
      for (let i = 0; i < found.length; i += REPLAY_CHUNK) {
        const chunk = found.slice(i, i + REPLAY_CHUNK)
        // Inside the group-commit chain: the sequence numbers it takes must become
        // visible in order with those of enqueue groups (see the cursor constraint).
        await this.writer.exclusive(() => this.replayChunk(chunk))
        for (const [, letter] of chunk) replayed.add(letter.event.id)
      }
      return [...replayed]
    })
  }

  protected _getState(key: string): Promise<string | undefined> {
    return this.db.get(stateKey(key))
  }

  protected async _scanState(prefix: string): Promise<Array<[string, string]>> {
    const entries = await this.db.iterator({ ...stateRangeOf(prefix), highWaterMarkBytes: READ_AHEAD }).all()
    return entries.map(([dbKey, json]) => [stateKeyOf(dbKey), json])
  }

  protected _takeForHandoff(limit: number, options: TakeForHandoffOptions): Promise<HandoffBatch | undefined> {
    return this.moves.run(async () => {
      this.handoffs.checkNew(options.handoffId)
      if (limit === 0 || this.counts.unprocessed === 0) return undefined
      // Nothing is at or past the next sequence number (see CoveredSpans).
      const range = { gte: this.cursor, lt: this.visibleEnd() }
      const found = await findNewest(this.db, range, limit, options, this.held, this.covered)
      if (found.length === 0) return undefined
      const { handoffId, peer } = options
      const takenAt = this.now()
      const keys = found.map((free) => free.key)
      await this.write(takeOps(handoffId, { peer, takenAt, keys }), this.options.sync !== 'none')
      this.handoffs.add({ handoffId, peer, takenAt, keys, values: found.map((free) => free.bytes) })
      this.counts.unprocessed -= found.length
      return { handoffId, peer, takenAt, events: found.map((free) => free.record), texts: found.map((free) => free.json) }
    })
  }

  protected _completeHandoff(handoffId: string): Promise<void> {
    // Under the moves mutex: it deletes unprocessed keys, and a take or dequeue reading
    // them from a snapshot taken before the delete must still find them held.
    return this.moves.run(async () => {
      const batch = await this.finishHandoff(handoffId, completeOps)
      if (batch !== undefined) this.gone(batch.keys, sum(batch.values))
    })
  }

  protected _returnHandoff(handoffId: string): Promise<void> {
    return this.moves.run(async () => {
      const batch = await this.finishHandoff(handoffId, returnOps)
      if (batch === undefined) return
      // The batch's keys are in queue order (see backOver).
      this.backOver(batch.keys)
      this.counts.unprocessed += batch.keys.length
      this.work.notify()
    })
  }

  /** Queue keys (in queue order) just put back in unprocessed: dequeue and takes must see them again. */
  private backOver(keys: string[]): void {
    const oldest = unprocessedKey(keys[0]!)
    if (oldest < this.cursor) this.cursor = oldest
    this.covered.forget(keys.map(unprocessedKey))
  }

  /**
   * Settle a pending batch with the ops `finish` makes for it (callers hold the moves
   * mutex). Undefined, writing nothing, if the id is unknown or already being settled;
   * a failed write leaves the batch pending.
   */
  private async finishHandoff(handoffId: string, finish: (batch: HeldBatch<number>) => Op[]): Promise<HeldBatch<number> | undefined> {
    const batch = this.handoffs.claim(handoffId)
    if (batch === undefined) return undefined
    try {
      await this.write(finish(batch), false)
    } catch (err) {
      this.handoffs.release(handoffId)
      throw err
    }
    this.handoffs.finish(handoffId)
    return batch
  }

  protected _pendingHandoffs(): Promise<HandoffBatch[]> {
    return readPending(this.db, this.handoffs.list(), (id) => this.handoffs.pending(id))
  }

  protected _seen(ids: string[]): Promise<boolean[]> {
    return seenWithin(this.db, ids, this.now(), this.options.dedupeWindowMs)
  }

  protected _remember(ids: string[]): Promise<void> {
    // In the group-commit chain, like enqueue groups: the sweep and lookups see it whole.
    return this.writer.exclusive(() => this.write(rememberOps(ids, this.now()), this.options.sync !== 'none'))
  }

  diskStatus(): DiskStatus {
    return { ...this.disk.state(), storeFaulted: this.health.faulted }
  }

  depth(): QueueDepth {
    return { ...this.counts, handingOff: this.handoffs.events }
  }

  stats(): DurableQueueStats {
    return { ...this.counters, ...this.store.counts }
  }

  protected _sweepDedupe(): Promise<number> {
    return this.sweeper.runOnce()
  }

  /**
   * One enqueue group. Planning (dedupe lookups, room, sequence numbers) runs one group
   * at a time in group order; the write may overlap the next groups' (groupsInFlight).
   * Its events count and become readable once every group before it is written too
   * (pending-groups.ts), so keys still appear in key order (the cursor constraint).
   */
  private async commitGroup(calls: PreparedEvent[][]): Promise<Array<Outcome<EnqueueResult[]>>> {
    const { plan, settle } = await this.planning.run(() => this.planGroup(calls))
    if (!settle) return plan.outcomes
    const written = await this.write(plan.ops, this.options.sync !== 'none').then(
      () => undefined,
      (err: unknown) => ({ err }),
    )
    const shown = settle(written !== undefined)
    if (shown) {
      for (const group of shown.groups) this.recent.added(group.from, group.stored)
      this.counts.unprocessed += shown.events
      this.counts.bytes += shown.bytes
      this.work.notify()
    }
    if (written) throw written.err
    this.counters.enqueueWrites++
    return plan.outcomes
  }

  private async planGroup(calls: PreparedEvent[][]): Promise<{ plan: EnqueuePlan; settle?: Settle }> {
    this.health.assertWritable()
    const ids = new Set(dedupeIds(calls))
    await this.pending.waitFor(ids)
    // Below the watermark there is room for duplicates only (a resent handoff is still taken).
    const low = this.disk.belowWatermark
    const coming = this.pending.coming()
    const plan = await planEnqueue(this.db, calls, {
      now: this.now(),
      dedupeWindowMs: this.options.dedupeWindowMs,
      room: low
        ? { events: 0, bytes: 0 }
        : {
            // Handing-off events are still on this disk until their peer acks; planned ones will be soon.
            events: this.options.maxEvents - this.counts.unprocessed - this.counts.inflight - this.handoffs.events - coming.events,
            bytes: this.options.maxBytes - this.counts.bytes - coming.bytes,
          },
      nextSeq: this.nextSeq,
      // Out of room for want of disk, not of queue: say so.
      ...(low ? { noRoom: () => lowDiskError(this.disk.state()) } : {}),
    })
    if (plan.ops.length === 0) return { plan }
    const settle = this.pending.push({ from: this.nextSeq, added: plan.added, addedBytes: plan.addedBytes, ids, stored: plan.written })
    // Taken before the write: if it fails, the numbers are skipped, never reused.
    this.nextSeq = plan.nextSeq
    // The log and then a table: what an event costs on disk before compaction.
    this.disk.noteWritten(2 * plan.addedBytes)
    return { plan, settle }
  }

  /** Where reads of unprocessed stop: before the first key of a group not yet visible. */
  private visibleEnd(): string {
    return unprocessedKey(seqString(this.pending.visibleSeq(this.nextSeq)))
  }

  private async replayChunk(chunk: Array<[string, DeadLetter]>): Promise<void> {
    const from = this.nextSeq
    const replay = replayOps(chunk, from)
    this.nextSeq = replay.nextSeq
    await this.write(replay.ops, false)
    this.recent.added(from, replay.written)
    this.counts.deadletter -= chunk.length
    this.counts.unprocessed += chunk.length
    this.counts.bytes += replay.bytes
    this.work.notify()
  }

  /** One atomic batch (store-writer.ts). */
  private write(ops: Op[], sync: boolean): Promise<void> {
    return this.store.write(ops, sync)
  }
}
