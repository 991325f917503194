// The queue contract every backend (durable LevelDB, memory) fulfils, and the one
// shared test suite runs against. An accepted event is in exactly one bucket at any
// moment: unprocessed, in-flight or (per failed pipeline) dead-letter; after a crash of
// a durable queue, everything in-flight goes back to unprocessed at open().

export type JsonObject = { [key: string]: unknown }

/** An event as binge stores and passes it on. */
export interface EventRecord {
  id: string
  /** Set when the event is meant for one pipeline only (POST /events/NAME, replay). */
  pipeline?: string
  /** Node id that first accepted the event. */
  origin: string
  /** Milliseconds since the epoch when the origin accepted it. */
  receivedAt: number
  /** How many times it has been handed from node to node. */
  hops: number
  data: JsonObject
}

/** An event a worker holds: `key` is its place in the queue, opaque to callers. */
export interface QueuedEvent extends EventRecord {
  key: string
}

export interface EnqueueResult {
  id: string
  /** Seen before within the dedupe window: not queued again. */
  duplicate: boolean
}

export interface DeadLetterInput {
  pipeline: string
  error: string
  attempts: number
}

export interface DeadLetter extends DeadLetterInput {
  event: EventRecord
  /** Milliseconds since the epoch when it was dead-lettered. */
  at: number
}

export type StateOp =
  | { type: 'put'; key: string; value: unknown }
  | { type: 'del'; key: string }

export interface AckOptions {
  /** Pipelines of this event that failed for good: kept in the dead-letter bucket. */
  deadletter?: DeadLetterInput[]
  /** Changes to stateful steps' state, committed in the same batch as the ack. */
  state?: StateOp[]
}

export interface QueueDepth {
  unprocessed: number
  inflight: number
  deadletter: number
  /** Bytes held by unprocessed and in-flight events (the `maxBytes` cap). */
  bytes: number
}

export interface RecoveryReport {
  /** In-flight events returned to unprocessed. */
  requeued: number
  unprocessed: number
  durationMs: number
}

export interface EventQueue {
  readonly mode: 'durable' | 'memory'
  /** Open the store and return every in-flight event to unprocessed. */
  open(): Promise<RecoveryReport>
  /** Close the store; in-flight events stay where they are (open() recovers them). */
  close(): Promise<void>
  /**
   * Make events durable (as the sync mode says) before resolving. All or nothing:
   * over `maxEvents`/`maxBytes` it throws BINGE_QUEUE_FULL and stores none.
   * Ids seen within the dedupe window come back with duplicate: true, not stored again.
   */
  enqueue(events: EventRecord[]): Promise<EnqueueResult[]>
  /** Move up to `max` of the oldest unprocessed events to in-flight; [] if none. */
  dequeue(max: number): Promise<QueuedEvent[]>
  /** Resolves when there may be unprocessed events, or the signal aborts. */
  waitForWork(signal?: AbortSignal): Promise<void>
  /**
   * Finish an in-flight event: delete it, keep its dead letters, commit its state.
   * An event not in flight (already finished, or handed out before a reopen) rejects
   * with BINGE_INTERNAL and changes nothing, so no event is ever finished twice.
   */
  ack(event: QueuedEvent, options?: AckOptions): Promise<void>
  /** Return in-flight events to unprocessed (shutdown, a worker giving it back); all or none, as ack. */
  nack(events: QueuedEvent[]): Promise<void>
  listDeadletter(limit?: number): Promise<DeadLetter[]>
  /** Put dead letters back on the queue (all when ids is absent); returns the ids replayed. */
  replayDeadletter(ids?: string[]): Promise<string[]>
  getState(key: string): Promise<unknown | undefined>
  depth(): QueueDepth
}
