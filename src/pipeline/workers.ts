// `workers` loops that take batches of events from the queue, run them through the
// engine and ack the batch in one write with the state of its stateful steps, then
// release the pipelines' locks (engine.ts). A worker takes its next batch while it
// processes one and writes an ack while it processes the next, so its outputs do not
// wait for the queue's writes (see loop). On stop, each worker finishes the batch it
// runs (one taken ahead goes back to the queue) or, if its retries are cut short,
// returns it to the queue: an event is never acked without having been handled. An
// ack that fails (the disk filled up, the store is reopening) is retried until it is
// written or the pool stops: the outputs already have the events, so giving up would
// deliver them again. The pool also runs the stateful steps' flusher.
import { setMaxListeners } from 'node:events'
import type { Logger } from 'pino'
import { BingeError, asError } from '../errors.js'
import type { AckOptions, EventQueue, QueuedEvent, StateOp } from '../queue/types.js'
import type { TraceStore } from '../trace.js'
import { abortableSleep, backoffDelay } from '../util/backoff.js'
import type { BatchOutcome, Engine } from './engine.js'
import { Flusher } from './flusher.js'

export interface WorkerPoolOptions {
  workers: number
  /** Events one worker takes at once: one output write and fsync per batch. */
  batchSize?: number
  queue: EventQueue
  engine: Engine
  log: Logger
  trace: TraceStore
}

/** How long a batch taken ahead may wait for the one before it before it goes back to the queue. */
const aheadHoldMs = 1_000

export class WorkerPool {
  private controller?: AbortController
  private loops: Promise<void>[] = []
  private stopping = false
  /** Aborted on stop to wake idle workers; retries are cut by `controller` only after a grace. */
  private wake = new AbortController()
  private readonly flusher: Flusher
  private readonly batchSize: number

  constructor(private readonly options: WorkerPoolOptions) {
    this.batchSize = options.batchSize ?? 32
    this.flusher = new Flusher({ engine: options.engine, queue: options.queue, log: options.log })
  }

  start(): void {
    if (this.controller) return
    this.stopping = false
    this.wake = new AbortController()
    // Every idle worker listens on the wake signal; more than ten is not a leak.
    setMaxListeners(this.options.workers + 10, this.wake.signal)
    this.controller = new AbortController()
    const signal = this.controller.signal
    this.loops = Array.from({ length: this.options.workers }, () => this.loop(signal))
    this.flusher.start(signal)
  }

  /** Stop taking events; give workers `graceMs` to finish, then cut their retries short. */
  async stop(graceMs = 10_000): Promise<void> {
    const controller = this.controller
    if (!controller) return
    this.stopping = true
    this.wake.abort()
    const timer = setTimeout(() => controller.abort(new Error('shutting down')), graceMs)
    await Promise.all(this.loops)
    await this.flusher.stop()
    clearTimeout(timer)
    this.controller = undefined
  }

  /**
   * One worker: a batch is taken while the one before it is processed, and its ack is
   * written while the next one is processed, so the queue's writes (which wait behind
   * the fsyncs of an ingest burst or a handoff) overlap the outputs' latency instead of
   * adding to it. A stateful pipeline still sees one batch after another: the next
   * batch waits for its lock, released once the previous ack is written (engine.ts).
   * At most one batch is taken ahead and one ack outstanding per worker, and a batch
   * taken ahead goes back to the queue if the one before it is still running after
   * `aheadHoldMs` (a stalled output): idle there, the mesh could hand it to a peer.
   */
  private async loop(signal: AbortSignal): Promise<void> {
    let ahead: Promise<QueuedEvent[] | undefined> | undefined
    let returning: Promise<void> = Promise.resolve()
    let acking: Promise<void> = Promise.resolve()
    try {
      while (!this.stopping && !signal.aborted) {
        const batch = await (ahead ?? this.take())
        ahead = undefined
        if (batch === undefined) continue
        if (batch.length === 0) {
          await acking
          await this.options.queue.waitForWork(this.wake.signal).catch(() => {})
          continue
        }
        if (this.worthTakingAhead()) ahead = this.take()
        const slow =
          ahead &&
          setTimeout(() => {
            const taken = ahead
            ahead = undefined
            returning = Promise.all([returning, taken]).then(([, events]) => (events?.length ? this.giveBack(events) : undefined))
          }, aheadHoldMs)
        const outcome = await this.begin(batch, signal)
        clearTimeout(slow)
        await acking
        if (outcome) acking = this.finish(batch, outcome, signal)
      }
    } finally {
      await acking
      const left = await ahead
      if (left && left.length > 0) await this.giveBack(left)
      await returning
    }
  }

  /**
   * Take the next batch ahead only if every other worker would still find a full batch
   * and some events stay free: taken ahead, events wait for this worker while an idle
   * one could run them, or the offloader hand them to a peer.
   */
  private worthTakingAhead(): boolean {
    const { workers, queue } = this.options
    return !this.stopping && queue.depth().unprocessed > workers * this.batchSize
  }

  /** A batch from the queue; undefined after a failure (logged, and waited out). */
  private async take(): Promise<QueuedEvent[] | undefined> {
    const { queue, log } = this.options
    try {
      return await queue.dequeue(this.batchSize)
    } catch (err) {
      if (this.stopping) return undefined
      log.error({ err: asError(err).message }, 'A worker could not take events from the queue and will try again.')
      await abortableSleep(1000, this.wake.signal).catch(() => {})
      return undefined
    }
  }

  /** Events taken and not processed (a stop, an abort): back to the queue. */
  private async giveBack(batch: QueuedEvent[]): Promise<void> {
    await this.options.queue
      .nack(batch)
      .catch((nackErr) =>
        this.options.log.error(
          { events: batch.length, err: asError(nackErr).message },
          'Events could not be returned to the queue; they stay in flight and are recovered at the next start.',
        ),
      )
  }

  /** Run the batch through the engine; undefined if it was aborted or failed (its events are back in the queue). */
  private async begin(batch: QueuedEvent[], signal: AbortSignal): Promise<BatchOutcome | undefined> {
    const { engine, log, trace } = this.options
    for (const e of batch) trace.add(e.id, 'dequeued')
    try {
      return await engine.begin(batch, signal)
    } catch (err) {
      // Aborted mid-retry: give the events back rather than ack them.
      await this.giveBack(batch)
      if (!signal.aborted && !this.stopping) {
        log.error(
          { events: batch.length, err: asError(err).message },
          'Processing failed unexpectedly; the events were returned to the queue.',
        )
        await abortableSleep(1000, this.wake.signal).catch(() => {})
      }
      return undefined
    }
  }

  /** Write the batch's ack and settle its outcome (releasing its pipelines' locks). */
  private async finish(batch: QueuedEvent[], outcome: BatchOutcome, signal: AbortSignal): Promise<void> {
    const { engine, log, trace } = this.options
    if (await this.ack(batch, outcome, signal)) {
      outcome.settle(true)
      for (const e of batch) trace.add(e.id, 'acked')
    } else {
      outcome.settle(false)
      log.error(
        { events: batch.length },
        'A batch was processed but its ack could not be written before the stop; its events stay in flight and are processed again at the next start.',
      )
    }
    if (engine.due()) this.flusher.request()
  }

  /**
   * Write the batch's ack, retrying while the queue refuses it for now (503: the store is
   * reopening after the disk filled up); false if it was not written before `signal`
   * (the stop's grace ended) or failed for good.
   */
  private async ack(batch: QueuedEvent[], outcome: { acks: AckOptions[]; state?: StateOp[] }, signal: AbortSignal): Promise<boolean> {
    const { queue, log } = this.options
    for (let attempt = 0; ; attempt++) {
      try {
        await queue.ackBatch(batch, outcome.acks, outcome.state)
        if (attempt > 0) log.info({ events: batch.length, attempts: attempt + 1 }, 'A delayed ack was written.')
        return true
      } catch (err) {
        const retryable = err instanceof BingeError && err.code === 'BINGE_NOT_READY'
        if (!retryable) {
          log.error(
            { events: batch.length, err: asError(err).message },
            'An ack failed; its events stay in flight and are processed again at the next start.',
          )
          return false
        }
        if (attempt === 0)
          log.warn({ events: batch.length, err: err.message }, 'An ack was refused for now; it is retried until the store takes it.')
        const stopped = await abortableSleep(backoffDelay(attempt + 1, 50, 2_000), signal).then(
          () => false,
          () => true,
        )
        if (stopped) return false
      }
    }
  }
}
