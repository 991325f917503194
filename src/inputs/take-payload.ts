// How an input hands one payload to the node and learns when it may acknowledge it to
// its source (docs/design.md §2, `inputs:`). Shared by every input, so they all treat
// the three outcomes alike:
// - durable (here or on a peer): resolve `accepted`; the input acks now;
// - can never be taken (EventInputError): dead-letter the raw text with its meta, then
//   resolve `deadlettered`; the input acks too, so one bad payload never blocks the rest;
// - not now (hard cap, not ready, a failed store write, a dead letter that failed to
//   write): wait with backoff and try the same payload again, for as long as it takes.
//   Nothing is acked meanwhile, so the source keeps the payload (and, for a one-at-a-time
//   protocol like MQTT, the ones behind it): that is the backpressure.
// Only a stop ends the waiting: it resolves `stopped`, and the input must not ack.
import { BingeError, asError } from '../errors.js'
import { EventInputError } from '../events/check-event.js'
import type { AcceptRequest } from '../ingest/ingest.js'
import type { EventMeta } from '../queue/types.js'
import { abortableSleep, backoffDelay } from '../util/backoff.js'
import type { InputContext, InputStatus } from './types.js'

export type TakeOutcome = 'accepted' | 'deadlettered' | 'stopped'

export interface TakeOptions {
  /** Aborted when the input stops: the payload is left with its source. */
  signal: AbortSignal
  /** The input's counts, kept up to date here. */
  counts: InputStatus['counts']
  /** Told when the payload is refused for now and when it went in after all. */
  onDeferred?(error: Error): void
  onResumed?(): void
  /** First and longest wait between tries (default 100 ms, 5 s). */
  backoffMs?: number
  maxBackoffMs?: number
}

/** Hand `payload` to the node's door until it is durable, dead-lettered, or the input stops. */
export async function takePayload(
  context: InputContext,
  payload: Uint8Array,
  request: AcceptRequest & { meta: EventMeta },
  options: TakeOptions,
): Promise<TakeOutcome> {
  const { signal, counts } = options
  counts.received++
  let deferred = false
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) return 'stopped'
    try {
      const results = await context.accept(payload, request)
      counts.accepted += results.length
      if (deferred) options.onResumed?.()
      return 'accepted'
    } catch (err) {
      if (isFinal(err)) {
        const taken = await deadLetter(context, payload, request.meta, err, options)
        if (taken && deferred) options.onResumed?.()
        return taken ? 'deadlettered' : 'stopped'
      }
      const error = asError(err)
      counts.deferred++
      if (!deferred) {
        deferred = true
        context.log.warn(
          { ...request.meta, err: error.message },
          'The node cannot take a payload now; it is left with its source and retried.',
        )
      }
      options.onDeferred?.(error)
      try {
        await abortableSleep(backoffDelay(attempt, options.backoffMs ?? 100, options.maxBackoffMs ?? 5_000), signal)
      } catch {
        return 'stopped'
      }
    }
  }
}

/** A refusal no retry can change: the payload does not parse or check, or is too big to go anywhere. */
function isFinal(err: unknown): err is BingeError {
  if (err instanceof EventInputError) return true
  return err instanceof BingeError && (err.code === 'BINGE_PAYLOAD_TOO_LARGE' || err.code === 'BINGE_BAD_REQUEST')
}

/** Keep the raw payload as a dead letter, retrying a failed write like a refused payload. */
async function deadLetter(
  context: InputContext,
  payload: Uint8Array,
  meta: EventMeta,
  error: Error,
  options: TakeOptions,
): Promise<boolean> {
  const raw = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')
  context.log.warn({ ...meta, err: error.message, bytes: payload.byteLength }, 'A payload can never be taken; it is kept as a dead letter.')
  for (let attempt = 1; ; attempt++) {
    try {
      await context.deadLetter(raw, meta, error.message)
      options.counts.deadLettered++
      return true
    } catch (err) {
      options.onDeferred?.(asError(err))
      try {
        await abortableSleep(backoffDelay(attempt, options.backoffMs ?? 100, options.maxBackoffMs ?? 5_000), options.signal)
      } catch {
        return false
      }
    }
  }
}
