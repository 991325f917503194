// The processing contract, shared by every step and output.
//
// - A step takes one event and returns the events that continue: [] means filtered
//   (counted, never silent), several means it split the event. It throws to fail the
//   event; the pipeline's onFail then decides (steps are not retried: they are
//   deterministic, the same input fails the same way).
// - An output resolves only once the batch is delivered (a file is fsync'd, an HTTP
//   endpoint answered 2xx); it throws to fail, and is retried per onFail.retry.
// - An event is acked only when every pipeline it entered has finished or handled its
//   failure, so a crash before that redelivers it (outputs may see it twice, bounded by
//   what was in flight).
import type { EventMeta, EventRecord, JsonObject, StateOp } from '../queue/types.js'

/** What flows between steps: the event's identity and its (possibly mapped) data. */
export interface PipelineEvent {
  readonly source: EventRecord
  data: JsonObject
}

/** One line written by an output: the envelope, or `data` alone with `envelope: false`. */
export interface Envelope {
  id: string
  pipeline: string
  node: string
  origin: string
  receivedAt: string
  /** What the input knew of the event (an MQTT topic, ...); absent for HTTP. */
  meta?: EventMeta
  data: JsonObject
}

export interface StepRun {
  /** State changes made while processing this event, committed with its ack. */
  readonly state: StateOp[]
  /** Aborted at shutdown: a step that waits (throttle's delay) stops waiting and throws. */
  readonly signal?: AbortSignal
}

/** What a stateful step's flush is told: the clock, and whether the node has events waiting. */
export interface FlushRun {
  /** Wall-clock milliseconds. */
  readonly now: number
  /** No event is waiting or in flight: nothing queued could still belong to an open window. */
  readonly idle: boolean
  /** No more events will come (end of input in `binge run`): close everything. */
  readonly final?: boolean
  readonly signal?: AbortSignal
}

export interface Step {
  readonly kind: string
  process(event: PipelineEvent, run: StepRun): Promise<PipelineEvent[]>
  /**
   * Stateful steps: called on a timer and after batches, under the pipeline's lock, to
   * close what is due (a window: its result, which flows on to the later steps and the
   * outputs) and forget what has expired. Its state changes commit once the results
   * are delivered.
   */
  flush?(run: FlushRun): Promise<PipelineEvent[]>
  /** Something is due for a flush now (a window passed by the watermark). */
  due?(): boolean
  /** How often the flush timer should call this step, at most (ms). */
  readonly flushEveryMs?: number
}

export interface Output {
  readonly kind: string
  /** Deliver these records; resolve once they are durable or acknowledged downstream. */
  write(records: unknown[], options?: { signal?: AbortSignal }): Promise<void>
  start?(): Promise<void>
  stop?(): Promise<void>
}
