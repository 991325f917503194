// The engine runs each event through every pipeline it enters and turns the results
// into acks: an event leaves the queue together with its dead letters and the state
// of the stateful steps it went through, in one write, only after every pipeline has
// finished or handled its failure. Nothing here drops an event without a count and a
// log line.
//
// Concurrency: several workers run batches at once. A pipeline with stateful steps is
// locked from the start of a batch's run until that batch's acks are written (the
// worker calls `settle`), so its committed state is only ever written by the holder,
// never overwritten by an older snapshot, and never holds an unacked event's effect.
// A batch takes the locks of the pipelines it enters in config order, one after the
// other, so two batches never wait for each other in a circle. If the write fails,
// `settle(false)` drops the in-memory state and the next holder reloads the store's.
import { asError } from '../errors.js'
import { startAll, stopAll } from '../util/startable.js'
import type { Logger } from 'pino'
import type { AckOptions, EventRecord, StateOp } from '../queue/types.js'
import type { TraceStore } from '../trace.js'
import type { Pipeline } from './pipeline.js'
import { acquireAll } from './state/lock.js'
import type { FlushRun } from './types.js'

/** A processed batch whose locks are held until its acks are written. */
export interface BatchOutcome {
  /** One per event, in order. */
  acks: AckOptions[]
  /** The stateful steps' changes, to commit in the same write as the acks (queue.ackBatch). */
  state: StateOp[]
  /** Say whether that write succeeded; releases the locks. Call exactly once (later calls do nothing). */
  settle(committed: boolean): void
}

/** A flush of one pipeline whose lock is held until its state is written. */
export interface FlushOutcome {
  pipeline: string
  /** Results delivered to the outputs. */
  emitted: number
  /** The results could not be delivered; nothing changed (they come again next time). */
  failure?: Error
  state: StateOp[]
  settle(committed: boolean): void
}

export class Engine {
  private readonly byName: Map<string, Pipeline>

  constructor(
    readonly pipelines: Pipeline[],
    private readonly log: Logger,
    private readonly trace: TraceStore,
  ) {
    this.byName = new Map(pipelines.map((p) => [p.name, p]))
  }

  has(name: string): boolean {
    return this.byName.has(name)
  }

  /** Open every pipeline's outputs; when one fails, those opened are closed again, last first. */
  async start(): Promise<void> {
    await startAll(this.pipelines, (err) =>
      this.log.warn({ err: asError(err).message }, 'A pipeline failed to close while a failed start was undone.'),
    )
  }

  /** Close every pipeline's outputs, last first; one that fails to close does not keep the others open. */
  async stop(): Promise<void> {
    await stopAll(this.pipelines, (err) => this.log.error({ err: asError(err).message }, 'A pipeline failed to close its outputs.'))
  }

  /** Pipelines with stateful steps, in config order. */
  stateful(): Pipeline[] {
    return this.pipelines.filter((p) => p.state !== undefined)
  }

  /** Some stateful pipeline has something due for a flush now. */
  due(): boolean {
    return this.pipelines.some((p) => p.state !== undefined && p.due())
  }

  /** How often stateful steps want a flush (ms); undefined when none has one. */
  flushEveryMs(): number | undefined {
    const wanted = this.pipelines.flatMap((p) => {
      const ms = p.flushEveryMs()
      return ms === undefined ? [] : [ms]
    })
    return wanted.length === 0 ? undefined : Math.min(...wanted)
  }

  /**
   * Process a batch; its stateful pipelines stay locked until `settle`. Throws only if
   * the signal aborts (the caller returns the events to the queue; nothing is held).
   */
  async begin(events: EventRecord[], signal: AbortSignal): Promise<BatchOutcome> {
    const acks: Array<Required<AckOptions>> = events.map(() => ({ deadletter: [], state: [] }))
    const entered = await this.route(events, acks)
    const locked = this.pipelines.filter((p) => p.state !== undefined && entered.has(p))
    const release = await acquireAll(locked.map((p) => p.state!.lock))
    // allSettled, not all: no pipeline may still be changing its state once the locks go.
    const runs = await Promise.allSettled(
      [...entered].map(async ([pipeline, indexes]) => {
        const results = await pipeline.runBatch(
          indexes.map((i) => events[i]!),
          signal,
        )
        results.forEach((r, k) => {
          if (r.status === 'skipped') return
          const ack = acks[indexes[k]!]!
          ack.state.push(...r.state)
          if (r.status === 'failed' && r.deadletter) ack.deadletter.push(r.deadletter)
        })
      }),
    )
    const failed = runs.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) {
      for (const p of locked) p.state!.invalidate()
      release()
      throw failed.reason
    }
    return { acks, state: locked.flatMap((p) => p.state!.ops()), settle: this.settler(locked, release) }
  }

  /**
   * Process a batch and settle it at once, the state folded into the last event's ack.
   * Only for a caller that runs one batch at a time and applies each batch's acks
   * before the next (`binge run`); workers use `begin` and `queue.ackBatch`.
   */
  async processBatch(events: EventRecord[], signal: AbortSignal): Promise<AckOptions[]> {
    const outcome = await this.begin(events, signal)
    outcome.acks.at(-1)?.state?.push(...outcome.state)
    outcome.settle(true)
    return outcome.acks
  }

  /** Flush one stateful pipeline under its lock, held until `settle`. */
  async flush(pipeline: Pipeline, run: FlushRun): Promise<FlushOutcome> {
    const state = pipeline.state
    if (!state) return { pipeline: pipeline.name, emitted: 0, state: [], settle: () => undefined }
    const release = await state.lock.acquire()
    try {
      const { ops, ...result } = await pipeline.flush(run)
      return { pipeline: pipeline.name, ...result, state: [...ops, ...state.ops()], settle: this.settler([pipeline], release) }
    } catch (err) {
      state.invalidate()
      release()
      throw err
    }
  }

  /** Flush every stateful pipeline with everything closed (end of input in `binge run`), settled at once. */
  async closeAll(signal: AbortSignal): Promise<StateOp[]> {
    const ops: StateOp[] = []
    for (const p of this.stateful()) {
      const outcome = await this.flush(p, { now: Date.now(), idle: true, final: true, signal })
      ops.push(...outcome.state)
      outcome.settle(true)
    }
    return ops
  }

  private settler(locked: Pipeline[], release: () => void): (committed: boolean) => void {
    let done = false
    return (committed) => {
      if (done) return
      done = true
      for (const p of locked) {
        if (committed) p.state!.commit()
        else p.state!.invalidate()
      }
      release()
    }
  }

  /** Which pipelines each event enters; events for a pipeline not run here are dead-lettered. */
  private async route(events: EventRecord[], acks: Array<Required<AckOptions>>): Promise<Map<Pipeline, number[]>> {
    const entered = new Map<Pipeline, number[]>()
    for (const [i, event] of events.entries()) {
      if (event.pipeline !== undefined && !this.byName.has(event.pipeline)) {
        const error = `pipeline "${event.pipeline}" is not configured on this node`
        this.log.warn(
          { id: event.id, pipeline: event.pipeline },
          'An event names a pipeline this node does not run, so it was dead-lettered.',
        )
        this.trace.add(event.id, 'deadlettered', { pipeline: event.pipeline, detail: error })
        acks[i]!.deadletter.push({ pipeline: event.pipeline, error, attempts: 0 })
        continue
      }
      let matched = false
      for (const p of this.pipelines) {
        if (!(await p.accepts(event))) continue
        matched = true
        const list = entered.get(p) ?? []
        list.push(i)
        entered.set(p, list)
      }
      if (!matched) this.trace.add(event.id, 'unmatched')
    }
    return entered
  }
}
