// The contract between the node and its inputs (docs/design.md §2, `inputs:`): each
// kind registers a name, a zod config schema, a one-line summary and a factory, as steps
// and outputs do, so config validation and docs/config.md come from the same entry.
//
// Design constraints:
// - An input owns only its transport. Every payload goes through `InputContext.accept`,
//   the node's one door (src/ingest/ingest.ts): the same parser, checks, limits, ids,
//   enqueue, handoff and hard cap as HTTP. An input never builds events itself.
// - `accept` resolves once the events are durable (here or on a peer): only then may the
//   input acknowledge them to their source (an MQTT PUBACK, ...). When it rejects, the
//   input must not acknowledge: BINGE_QUEUE_FULL and BINGE_NOT_READY are "later", any
//   EventInputError is "never" (the payload can not parse: `deadLetter` it, then ack).
// - An input is Startable: `start` resolves when it is set up (connecting may go on in
//   the background, forever, with backoff); `stop` stops taking new payloads and
//   resolves once nothing it took is waiting in `accept`.
import type { z } from 'zod'
import type { Logger } from 'pino'
import type { AcceptRequest } from '../ingest/ingest.js'
import type { EnqueueResult, EventMeta } from '../queue/types.js'
import type { Startable } from '../util/startable.js'

export interface InputContext {
  nodeId: string
  /** The input's own name in logs and stats: `mqtt` or `mqtt#2` when there are several. */
  name: string
  log: Logger
  /** The node's one door: parse, check and make durable; see the constraints above. */
  accept(payload: string | Uint8Array, request: AcceptRequest): Promise<EnqueueResult[]>
  /**
   * Keep a payload that can never be taken (not JSON, not an object, over a limit) as a
   * dead letter with its raw text, its metadata and why; resolves once it is durable.
   */
  deadLetter(raw: string, meta: EventMeta, error: string): Promise<void>
}

/** What /stats and /metrics show of an input. */
export interface InputStatus {
  name: string
  kind: string
  /** `connected` when it is taking payloads; anything else says why not. */
  state: 'starting' | 'connecting' | 'connected' | 'paused' | 'disconnected' | 'stopped'
  /** Payloads received, events accepted, payloads dead-lettered, payloads refused for now (and redelivered). */
  counts: { received: number; accepted: number; deadLettered: number; deferred: number }
  /** The last connection or delivery error, if any. */
  lastError?: string
}

export interface Input extends Startable {
  readonly kind: string
  status(): InputStatus
}

export interface InputEntry<C = unknown> {
  name: string
  summary: string
  schema: z.ZodType<C>
  create(config: C, context: InputContext): Input
}
