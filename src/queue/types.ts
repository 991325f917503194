// The queue contract every backend (durable LevelDB, memory) fulfils through one base
// class (abstract-queue.ts), and the one shared test suite runs against. An accepted event is in exactly one bucket at any
// moment: unprocessed, in-flight, handing-off (promised to a peer) or (per failed
// pipeline) dead-letter. After a crash of a durable queue, everything in-flight goes
// back to unprocessed at open(); a handing-off batch stays promised to its peer until
// completeHandoff or returnHandoff, because the peer may already hold it.

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
  /**
   * Set when a client chose the id (an Idempotency-Key): the same id may come again, for
   * the same event or, by mistake, another, so wherever it is accepted its dedupe entry
   * keeps a fingerprint of pipeline and data to tell the two apart. An id binge made
   * cannot be reused for another event, and needs none (EnqueueOptions.fingerprint).
   */
  keyed?: true
  /**
   * What the input that took the event knows of it beyond its data, e.g. an MQTT
   * topic: `{ input: 'mqtt', topic: 'sensors/t-1' }`. Absent for HTTP. Expressions see
   * it as `$meta`; envelopes carry it.
   */
  meta?: EventMeta
  data: JsonObject
}

/** String-valued facts an input adds to an event (keys and values bounded by `checkMeta`). */
export type EventMeta = Record<string, string>

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

export type StateOp = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string }

export interface AckOptions {
  /** Pipelines of this event that failed for good: kept in the dead-letter bucket. */
  deadletter?: DeadLetterInput[]
  /** Changes to stateful steps' state, committed in the same batch as the ack. */
  state?: StateOp[]
}

export interface QueueDepth {
  /** Events waiting here: what the high- and low-water marks are compared with. */
  unprocessed: number
  inflight: number
  /** Events taken for a handoff and not yet acked or returned: still on this disk. */
  handingOff: number
  deadletter: number
  /** Bytes held by unprocessed, in-flight and handing-off events (the `maxBytes` cap). */
  bytes: number
}

/** A batch of events promised to one peer, kept here until it acks or the batch comes back. */
export interface HandoffBatch {
  handoffId: string
  /** Peer id the batch is promised to; a resend goes to the same peer. */
  peer: string
  /** Milliseconds since the epoch when the batch was taken. */
  takenAt: number
  /** Oldest first: the newest eligible events of the queue, in their queue order. */
  events: EventRecord[]
  /** Each event's JSON as stored, where the store has it (a handoff frame sends its data part as it is). */
  texts?: string[]
}

export interface EnqueueOptions {
  /**
   * The ids were made by this node just now (a POST without Idempotency-Key): no client
   * can send them again, and a handoff never brings an event back to the node it came
   * from, so they are neither looked up in nor added to the dedupe index. On the
   * durable queue that halves the entries an event costs on the ingest path.
   */
  newIds?: boolean
  /**
   * Keep a fingerprint of each indexed `keyed` event's pipeline and data with its dedupe
   * entry, and refuse the whole call (BINGE_IDEMPOTENCY_CONFLICT) if an id seen within
   * the window was fingerprinted with another: the id was reused for a different event
   * (a batch keyed K has ids K-0, K-1, ..., which a single request may also be keyed).
   * A resend of the same event matches and stays a duplicate. Set at ingest and for an
   * overflow handoff; not for a forward, whose retry may carry a re-transformed body
   * under the same id. An event without `keyed` (its id made by binge) gets none: the
   * fingerprint (a canonical JSON text and a hash) was a tenth of a handoff receiver's
   * work for ids that can only come again as the same event.
   */
  fingerprint?: boolean
  /**
   * Per event, the JSON text its `data` came as, when the caller has it (a parsed
   * payload, ../events/parse-events.ts): JSON.parse of it gave `data`, which has been
   * checked. It is stored as is instead of serializing `data` again. The caller gives
   * `data` up: the durable queue may hand that very object to a worker (once) instead
   * of parsing the stored text again (durable/recent-events.ts).
   */
  dataTexts?: ReadonlyArray<string | undefined>
  /**
   * The events are one batch that may come again, whole and under this id, and only so
   * (a handoff batch, resent after an unknown outcome): the caller makes the id unique
   * to its sender. The dedupe index remembers the batch by one entry, and a call whose
   * batch was accepted within the window is a duplicate whole. An id binge made (UUIDv7,
   * not keyed) can come again only inside its batch, so it is neither looked up nor
   * remembered; any other id is looked up and remembered as ever: a client's key (with
   * its fingerprint), a forward's derived id (`ID/PIPELINE`, which a retried forward
   * sends again in another batch), a key an event stored before the `keyed` flag
   * carries unflagged (unless it is itself shaped as a UUIDv7). A durable store first
   * opened by a version from before batch entries, or after one wrote to it, looks up
   * every id for one window, as its old entries may meet their batch's resend.
   * Measured on a handoff receiver (`npm run bench:mesh`): an entry and a lookup per
   * event took it to 43-48 µs of CPU per event, against 34-36 without.
   */
  batch?: string
}

export interface TakeForHandoffOptions {
  /** Made by the sender, unique among its pending batches; no NUL character. */
  handoffId: string
  peer: string
  /** Only events with `hops < maxHops` are taken. */
  maxHops: number
  /**
   * Leave events whose `origin` is this node id (the receiving peer's): that node
   * accepted them first, so its dedupe index would drop them as duplicates and the
   * ack would delete the only copy.
   */
  excludeOrigin?: string
  /**
   * At most this many bytes of events (as stored JSON) in the batch, so it fits one
   * frame; an event bigger than this alone is never taken (it is processed where it is).
   */
  maxBytes?: number
}

export interface RecoveryReport {
  /**
   * In-flight copies returned to unprocessed: only a store last written before issue 14
   * has any (an in-flight event now stays under its unprocessed key, so after a crash
   * it is simply among `unprocessed`).
   */
  requeued: number
  unprocessed: number
  /** Events still promised to peers: resend their batches (pendingHandoffs). */
  handingOff: number
  durationMs: number
}

/** The data volume as the durable queue sees it (queue.minFreeDisk). */
export interface DiskStatus {
  freeBytes: number
  totalBytes: number
  minFreeBytes: number
  /** New events are refused (429, or handed to a peer) until space is back above minFreeBytes. */
  belowWatermark: boolean
  /** A write failed for want of space: writes are refused (503) until the store has reopened. */
  storeFaulted: boolean
}

export interface EventQueue {
  readonly mode: 'durable' | 'memory'
  /** Open the store and return every in-flight event to unprocessed (handing-off ones stay). */
  open(): Promise<RecoveryReport>
  /** Close the store; in-flight events stay where they are (open() recovers them). */
  close(): Promise<void>
  /**
   * Make events durable (as the sync mode says) before resolving. All or nothing:
   * over `maxEvents`/`maxBytes` it throws BINGE_QUEUE_FULL and stores none.
   * Ids seen within the dedupe window come back with duplicate: true, not stored again.
   */
  enqueue(events: EventRecord[], options?: EnqueueOptions): Promise<EnqueueResult[]>
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
  /**
   * Finish several in-flight events in ONE atomic write: each event as `ack` would
   * (acks[i] is events[i]'s), then `state`, changes not tied to one event (a worker
   * batch's step state, a window flush), applied in order after the events' own. With
   * no events it commits `state` alone. All or nothing: an event not in flight, or a
   * length mismatch, rejects with BINGE_INTERNAL and writes nothing.
   */
  ackBatch(events: QueuedEvent[], acks: AckOptions[], state?: StateOp[]): Promise<void>
  /** Return in-flight events to unprocessed (shutdown, a worker giving it back); all or none, as ack. */
  nack(events: QueuedEvent[]): Promise<void>
  listDeadletter(limit?: number): Promise<DeadLetter[]>
  /** Keep events that were never queued as dead letters (an input's payload that can never parse); durable when it resolves. */
  putDeadletter(event: EventRecord, letter: DeadLetterInput): Promise<void>
  /** Put dead letters back on the queue (all when ids is absent); returns the ids replayed. */
  replayDeadletter(ids?: string[]): Promise<string[]>
  getState(key: string): Promise<unknown | undefined>
  /** Every state entry whose key starts with `prefix`, in key order (a stateful step loads its own). */
  scanState(prefix: string): Promise<Array<{ key: string; value: unknown }>>
  /**
   * Move up to `max` of the newest unprocessed events with hops < maxHops (any
   * `pipeline`; never in-flight ones) into the handing-off bucket under `handoffId`,
   * in one batch written with the configured sync: it is on disk before it resolves,
   * so before anything is sent (the durable queue writes a header naming the events
   * and leaves them in place, held, so the move costs no rewrite of the events).
   * Undefined when nothing is eligible. A handoff id that is still pending rejects
   * with BINGE_INTERNAL.
   */
  takeForHandoff(max: number, options: TakeForHandoffOptions): Promise<HandoffBatch | undefined>
  /**
   * The receiver acked: delete the batch (no fsync: a lost delete only causes a resend,
   * which the receiver dedupes). An unknown id, or one being returned, is a no-op.
   */
  completeHandoff(handoffId: string): Promise<void>
  /**
   * Refused, or the peer stayed unreachable: put the batch's events back in unprocessed
   * under their own queue keys (so in their old place), in one atomic batch, and wake
   * waitForWork. An unknown id, or one being completed, is a no-op.
   */
  returnHandoff(handoffId: string): Promise<void>
  /** Every batch in the handing-off bucket, oldest taken first (after a restart: resend them). */
  pendingHandoffs(): Promise<HandoffBatch[]>
  /** For each id: was it accepted (enqueued or remembered) here within the dedupe window? */
  seen(ids: string[]): Promise<boolean[]>
  /**
   * Count ids as accepted here now, in the dedupe index only: their events were made
   * durable on a peer (routed, or handed off at the hard cap), so a client retrying with
   * the same Idempotency-Key here gets `duplicate: true` rather than a second copy.
   * Written with the configured sync, like an enqueue.
   */
  remember(ids: string[]): Promise<void>
  depth(): QueueDepth
  /** The data volume's free space; undefined in memory mode, which has none to watch. */
  diskStatus(): DiskStatus | undefined
}
