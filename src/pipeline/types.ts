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
import type { EventRecord, JsonObject, StateOp } from '../queue/types.js'

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
  data: JsonObject
}

export interface StepContext {
  readonly pipeline: string
  readonly node: string
  /** Read state of a stateful step; writes go into `pending` and commit with the ack. */
  getState(key: string): Promise<unknown | undefined>
}

export interface StepRun {
  /** State changes made while processing this event, committed with its ack. */
  readonly state: StateOp[]
}

export interface Step {
  readonly kind: string
  process(event: PipelineEvent, run: StepRun): Promise<PipelineEvent[]>
}

export interface Output {
  readonly kind: string
  /** Deliver these records; resolve once they are durable or acknowledged downstream. */
  write(records: unknown[], options?: { signal?: AbortSignal }): Promise<void>
  start?(): Promise<void>
  stop?(): Promise<void>
}
