// /binge/handoff/1.0.0: a batch of events moves from one node's disk to another's.
// The receiver answers `accepted` only after the whole batch is durable (the same
// group commit as ingest). It remembers the batch by its sender and handoffId (one
// dedupe entry, EnqueueOptions.batch, written with the events), so a resent batch
// (after a timeout, reset or sender restart) is dropped whole and never adds work; ids
// that may come again in another batch (a client's key, a forward's derived id) are
// indexed and dropped one by one. A receiver over its own high-water mark refuses a
// new overflow batch, which is not an error: the sender tries another peer. A batch it
// has seen, or any id of, is a resend and is always accepted, so a lost `accepted`
// answer cannot turn into a refusal that makes the sender process the events itself
// as well; for the same reason a resend is taken even while the node starts or stops
// (its queue is open whenever the mesh serves), and only a new batch is refused then.
// So is a new batch while the data volume is below queue.minFreeDisk or the store is
// faulted. What the receiver checks and corrects in a batch before any of that is in
// handoff-checks.ts.
import { z } from 'zod'
import { BingeError } from '../errors.js'
import { batchDedupeId } from '../queue/admission.js'
import type { EventQueue, EventRecord } from '../queue/types.js'
import { checkHandoff } from './handoff-checks.js'
import type { DecodedHandoff } from './handoff-frame.js'

export const handoffProtocol = '/binge/handoff/1.0.0'
export const maxHandoffEvents = 10_000

/** One event of a request, as its shape is checked (handoffEvent): an EventRecord's fields. */
export interface HandoffEvent {
  id: string
  pipeline?: string
  origin: string
  receivedAt: number
  hops: number
  /** Its id came from a client (EventRecord.keyed): absent, not false, when it did not. */
  keyed?: true
  meta?: Record<string, string>
  data: Record<string, unknown>
}

const eventFields = new Set(['id', 'pipeline', 'origin', 'receivedAt', 'hops', 'keyed', 'meta', 'data'])
/** Does `text` hold a C0 control character or DEL? */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isText = (v: unknown, max: number, min = 1): v is string => typeof v === 'string' && v.length >= min && v.length <= max
const isCount = (v: unknown, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max

/**
 * Event `i` of a request with its shape checked, or what is wrong with it. By hand, not
 * a schema: a schema library spent 2-3 us an event here, on the receiver's busy thread.
 * `data` is the object as parsed, not a copy (the event checks must see an own
 * `__proto__` key to refuse it as HTTP does); `meta` is a copy without one.
 */
export function handoffEvent(e: unknown, i: number): HandoffEvent | string {
  const at = `event ${i}`
  if (!isObject(e)) return `${at} is not an object`
  for (const key of Object.keys(e)) if (!eventFields.has(key)) return `${at} has the unknown field ${JSON.stringify(key)}`
  const { id, pipeline, origin, receivedAt, hops, keyed, meta, data } = e
  // No control character: every id binge makes or takes is printable, and a NUL marks a batch's dedupe entry (batchDedupeId).
  if (!isText(id, 1000) || hasControlCharacter(id)) return `${at}: id must be a string of 1 to 1000 printable characters`
  if (pipeline !== undefined && !isText(pipeline, 200)) return `${at}: pipeline must be a string of 1 to 200 characters`
  if (!isText(origin, 200)) return `${at}: origin must be a string of 1 to 200 characters`
  if (!isCount(receivedAt, Number.MAX_SAFE_INTEGER)) return `${at}: receivedAt must be a whole number, at least 0`
  if (!isCount(hops, 1000)) return `${at}: hops must be a whole number from 0 to 1000`
  if (keyed !== undefined && keyed !== true) return `${at}: keyed must be true when present`
  if (!isObject(data)) return `${at}: data must be a JSON object`
  const event: HandoffEvent = { id, origin, receivedAt, hops, data }
  if (keyed === true) event.keyed = true
  if (pipeline !== undefined) event.pipeline = pipeline
  if (meta !== undefined) {
    if (!isObject(meta)) return `${at}: meta must be an object of strings`
    const copy: Record<string, string> = {}
    for (const [key, value] of Object.entries(meta)) {
      if (key.length > 64 || !isText(value, 4096, 0)) return `${at}: meta holds keys of at most 64 characters and strings of at most 4096`
      if (key !== '__proto__') copy[key] = value
    }
    event.meta = copy
  }
  return event
}

/** The envelope by schema; its events one by one (handoffEvent). */
const requestSchema = z.strictObject({
  /** 2: the frame carries each event's data as a text of its own (handoff-frame.ts); 1: inline. */
  v: z.union([z.literal(1), z.literal(2)]),
  handoffId: z.string().min(1).max(200),
  /** overflow: load sharing (refused over the high-water mark); route: for a pipeline the sender lacks. */
  kind: z.enum(['overflow', 'route']),
  from: z.string().min(1).max(200),
  events: z.array(z.unknown()).min(1).max(maxHandoffEvents),
})

export type HandoffRequest = Omit<z.output<typeof requestSchema>, 'events'> & { events: HandoffEvent[] }

/** A request body with its shape checked, or why it is not a request. */
export function parseHandoffRequest(body: unknown): HandoffRequest | string {
  const parsed = requestSchema.safeParse(body)
  if (!parsed.success) return parsed.error.issues[0]?.message ?? 'bad shape'
  const events: HandoffEvent[] = []
  for (let i = 0; i < parsed.data.events.length; i++) {
    const event = handoffEvent(parsed.data.events[i], i)
    if (typeof event === 'string') return event
    events.push(event)
  }
  return { ...parsed.data, events }
}

export type HandoffResponse =
  /** duplicateIds: the ids of the batch the receiver had accepted before (and dropped now). */
  { status: 'accepted'; accepted: number; duplicates: number; duplicateIds?: string[] } | { status: 'refused'; reason: string }

export interface HandoffReceiverComponents {
  queue: EventQueue
  highWaterMark: number
  /** The largest event taken at this node's HTTP door (http.maxBodyBytes): the same limit here. */
  maxEventBytes: number
  /** False while recovering or shutting down. */
  accepting(): boolean
  hasPipeline(name: string): boolean
  /** Called when a batch fails the checks of handoff-checks.ts: a bug or an attacker, worth a warning. */
  onChecksFailed?(reason: string): void
  /** Called with the events newly made durable here (not the duplicates). */
  onHandedIn(events: EventRecord[], from: string): void
}

const refused = (reason: string): HandoffResponse => ({ status: 'refused', reason })

/**
 * `senderNode`: the node name the connection's peer id announced (undefined: none, or
 * not valid). `frame`: what decoding the frame found besides the body (handoff-frame.ts).
 * `senderPeer`: the connection's peer id, which scopes the batch's dedupe entry (a
 * caller without a connection, a test, scopes it by `senderNode`).
 */
export async function receiveHandoff(
  body: unknown,
  senderNode: string | undefined,
  parts: HandoffReceiverComponents,
  frame: Omit<DecodedHandoff, 'body'> = {},
  senderPeer?: string,
): Promise<HandoffResponse> {
  if (frame.invalid !== undefined) return refused(`invalid handoff request: ${frame.invalid}`)
  const request = parseHandoffRequest(body)
  if (typeof request === 'string') return refused(`invalid handoff request: ${request}`)
  const dataTexts = request.v === 2 ? frame.dataTexts : undefined
  if (request.v === 2 && dataTexts?.length !== request.events.length)
    return refused('invalid handoff request: a v2 body comes with its data texts')
  const checks = { senderNode, hasPipeline: parts.hasPipeline, maxEventBytes: parts.maxEventBytes, now: Date.now() }
  const events = checkHandoff(request, checks, dataTexts)
  if (typeof events === 'string') {
    parts.onChecksFailed?.(events)
    return refused(events)
  }
  const refusal = reasonToRefuse(request, parts)
  // The batch's dedupe entry is scoped by the sender's peer id: it is authenticated, and
  // it lives in the sender's data dir with the batches it may resend (a node name may
  // change with the host's name), so one peer's batch never passes for another's.
  const batch = `${senderPeer ?? request.from}\u0000${request.handoffId}`
  // Only a new batch may be refused; the dedupe lookup that tells a resend is paid
  // here only when there is a reason (enqueue looks up its entry anyway).
  if (refusal !== undefined && !(await parts.queue.seen([batchDedupeId(batch), ...events.map((e) => e.id)])).some(Boolean))
    return refused(refusal)
  let results
  try {
    // An overflow batch holds events as clients sent them: an id reused for another
    // event is refused (the sender keeps it). A route may carry a forward's retry,
    // re-transformed under the same id, which stays a duplicate.
    // v2: each event's data is stored as the text it came as (checked with it above).
    results = await parts.queue.enqueue(events, { fingerprint: request.kind === 'overflow', dataTexts: storable(dataTexts), batch })
  } catch (err) {
    if (err instanceof BingeError && err.code === 'BINGE_QUEUE_FULL') return refused('its queue is full')
    if (err instanceof BingeError && err.code === 'BINGE_IDEMPOTENCY_CONFLICT') return refused(err.message)
    throw err
  }
  const fresh = events.filter((_, i) => !results[i]!.duplicate)
  if (fresh.length > 0) parts.onHandedIn(fresh, request.from)
  const duplicateIds = results.filter((r) => r.duplicate).map((r) => r.id)
  return { status: 'accepted', accepted: fresh.length, duplicates: duplicateIds.length, duplicateIds }
}

/** The texts prepare may store as they are: a text it would take for no object (leading space, say) is serialized again. */
function storable(dataTexts: readonly string[] | undefined): Array<string | undefined> | undefined {
  return dataTexts?.map((text) => (text.charCodeAt(0) === 0x7b ? text : undefined))
}

function reasonToRefuse(request: HandoffRequest, parts: HandoffReceiverComponents): string | undefined {
  if (!parts.accepting()) return 'the node is not accepting events (starting or shutting down)'
  if (request.kind === 'overflow' && parts.queue.depth().unprocessed >= parts.highWaterMark) return 'over its high-water mark'
  const disk = parts.queue.diskStatus()
  if (disk?.storeFaulted) return 'its data volume is full (reopening its store)'
  if (disk?.belowWatermark) return 'its data volume is below queue.minFreeDisk'
  return undefined
}

const responseSchema = z.union([
  z.object({ status: z.literal('accepted'), accepted: z.number(), duplicates: z.number(), duplicateIds: z.array(z.string()).optional() }),
  z.object({ status: z.literal('refused'), reason: z.string() }),
])

/** Check a peer's answer; anything unexpected is an unknown outcome (the caller resends). */
export function parseHandoffResponse(body: unknown): HandoffResponse {
  const parsed = responseSchema.safeParse(body)
  if (!parsed.success) throw new Error('the peer answered the handoff with something unexpected')
  return parsed.data
}
