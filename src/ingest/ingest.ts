// The one way in (docs/design.md §3): every door (HTTP, an input such as MQTT) hands its
// payload here, and it meets the same checks, limits, ids, enqueue, high-water-mark
// handoff and hard cap. A door only translates: it reads its payload and says what it
// knows (format, Idempotency-Key, pipeline, input metadata), and renders the outcome.
//
// Design constraints:
// - Nothing is admitted unless the node is ready; a payload is parsed whole or refused
//   whole (parse-events.ts), before anything is written.
// - An event is acknowledged only once it is durable here or on a peer that said so.
// - Over the hard cap (BINGE_QUEUE_FULL) the events go to a peer with room; only when no
//   peer takes them is the door told to refuse, with the least-loaded peer to try.
// - The parts it needs are narrow (`IngestParts`), so the policy is tested without a
//   mesh and the node stays a composition root.
import { BingeError, asError } from '../errors.js'
import { type EventFormat, type EventLimits, parseEvents } from '../events/parse-events.js'
import { uuidv7 } from '../ids.js'
import type { EnqueueResult, EventMeta, EventQueue, EventRecord, JsonObject } from '../queue/types.js'

/** What a door knows of one payload besides its bytes. */
export interface AcceptRequest {
  format: EventFormat
  /** Ids are this key (one event) or `KEY-0`, `KEY-1`, ... (an array or NDJSON). */
  idempotencyKey?: string
  /** Only this pipeline (POST /events/NAME). */
  pipeline?: string
  /** The input's facts about the payload, e.g. an MQTT topic; copied to every event. */
  meta?: EventMeta
}

interface IngestOptions {
  idempotencyKey?: string
  pipeline?: string
  /** The payload was an array or NDJSON, so keyed ids get a -N suffix even for one event. */
  batch?: boolean
  meta?: EventMeta
}

/** A mesh as ingest sees it: somewhere to put events this node cannot or should not keep. */
export interface PeerDoor {
  /** Make the events durable on peers; undefined when no peer took them. */
  handOffDirect(events: EventRecord[], kind: 'overflow' | 'route', pipeline?: string): Promise<{ duplicateIds: string[] } | undefined>
  /** Does a peer run this pipeline? */
  knowsPipeline(name: string): boolean
  /** The peer a refused client could try instead, least loaded first. */
  suggestPeer(): { node: string; http: string } | undefined
}

export interface IngestParts {
  nodeId: string
  queue: Pick<EventQueue, 'enqueue' | 'seen' | 'remember'>
  trace(id: string, step: 'received' | 'refused' | 'duplicate', detail?: string): void
  /** Counted once per payload: accepted, duplicates, seconds taken. */
  accepted(count: number, duplicates: number, seconds: number): void
  /** The node's phase: only a `ready` node takes events. */
  phase(): string
  /** Does this node run the pipeline? */
  runsPipeline(name: string): boolean
  /** The mesh, once the node has joined one (undefined: it runs alone). */
  peers(): PeerDoor | undefined
  limits: EventLimits
}

/** Why a node in `phase` takes nothing now; undefined when it is ready. */
export function phaseRefusal(phase: string): BingeError | undefined {
  if (phase === 'ready') return undefined
  const why = phase === 'draining' || phase === 'stopped' ? 'shutting down' : 'recovering its queue'
  return new BingeError('BINGE_NOT_READY', `the node is ${why}; retry shortly`, { retryAfter: 1 })
}

export class Ingest {
  constructor(private readonly parts: IngestParts) {}

  /** Does this node, or a peer it knows, run the pipeline? */
  private knowsPipeline(name: string): boolean {
    return this.parts.runsPipeline(name) || (this.parts.peers()?.knowsPipeline(name) ?? false)
  }

  /**
   * One payload through the one door: readiness, the pipeline, parse and check (all or
   * nothing), then admission. Throws EventInputError (a 4xx) or BingeError.
   */
  async accept(payload: string | Uint8Array, request: AcceptRequest): Promise<EnqueueResult[]> {
    const unavailable = phaseRefusal(this.parts.phase())
    if (unavailable) throw unavailable
    const pipeline = request.pipeline
    if (pipeline !== undefined && !this.knowsPipeline(pipeline)) {
      throw new BingeError('BINGE_NOT_FOUND', `no known node runs the pipeline "${pipeline}"`)
    }
    const { events, texts, batch } = parseEvents(payload, request.format, this.parts.limits)
    return this.ingest(events, texts, { idempotencyKey: request.idempotencyKey, pipeline, batch, meta: request.meta })
  }

  /** Checked objects in: give them ids, trace them, admit them, count them. */
  private async ingest(objects: JsonObject[], texts: string[], options: IngestOptions): Promise<EnqueueResult[]> {
    const started = performance.now()
    const receivedAt = Date.now()
    const key = options.idempotencyKey
    const single = !options.batch
    // The optional fields are worked out once per request (the hot path); each event copies them.
    const extra: Pick<EventRecord, 'keyed' | 'pipeline' | 'meta'> = {}
    if (key !== undefined) extra.keyed = true
    if (options.pipeline !== undefined) extra.pipeline = options.pipeline
    if (options.meta !== undefined) extra.meta = options.meta
    const events: EventRecord[] = objects.map((data, i) => ({
      id: key === undefined ? uuidv7() : single ? key : `${key}-${i}`,
      origin: this.parts.nodeId,
      receivedAt,
      hops: 0,
      data,
      ...extra,
    }))
    // Traced before admission, so a handoff made while admitting comes after it.
    for (const e of events) this.parts.trace(e.id, 'received')
    let results: EnqueueResult[]
    try {
      results = await this.admit(events, texts, options.pipeline, key === undefined)
    } catch (err) {
      for (const e of events) this.parts.trace(e.id, 'refused', asError(err).message)
      throw err
    }
    let duplicates = 0
    for (const r of results) {
      if (!r.duplicate) continue
      duplicates++
      this.parts.trace(r.id, 'duplicate')
    }
    this.parts.accepted(results.length - duplicates, duplicates, (performance.now() - started) / 1000)
    return results
  }

  /**
   * Make the events durable here, or on a peer: one that runs the pipeline when this
   * node does not, or one with room when this node is at its hard cap. A 429 comes only
   * when no peer could take them, and names the least-loaded peer to try instead.
   * `newIds`: the ids were made here just now (no Idempotency-Key), so dedupe has
   * nothing to do.
   */
  private async admit(events: EventRecord[], texts: string[], pipeline: string | undefined, newIds: boolean): Promise<EnqueueResult[]> {
    const peers = this.parts.peers()
    if (peers && pipeline !== undefined && !this.parts.runsPipeline(pipeline)) {
      const results = await this.viaPeer(peers, events, 'route', newIds, pipeline)
      if (!results)
        throw new BingeError('BINGE_NOT_READY', `no peer running the pipeline "${pipeline}" could take the events now`, { retryAfter: 1 })
      return results
    }
    try {
      return await this.parts.queue.enqueue(events, { newIds, fingerprint: !newIds, dataTexts: texts })
    } catch (err) {
      if (!peers || !(err instanceof BingeError) || err.code !== 'BINGE_QUEUE_FULL') throw err
      const results = await this.viaPeer(peers, events, 'overflow', newIds)
      if (results) return results
      const suggestion = peers.suggestPeer()
      throw new BingeError('BINGE_QUEUE_FULL', `${err.message}; no peer can take more either`, {
        retryAfter: err.retryAfter ?? 1,
        details: suggestion ? { peer: suggestion } : {},
      })
    }
  }

  /**
   * Make the events durable on a peer, and remember their ids here: a client retrying
   * with the same Idempotency-Key at this node gets `duplicate: true`, whichever peer
   * holds the first copy and whether or not this node has room by then. Undefined when
   * no peer took them.
   */
  private async viaPeer(
    peers: PeerDoor,
    events: EventRecord[],
    kind: 'overflow' | 'route',
    newIds: boolean,
    pipeline?: string,
  ): Promise<EnqueueResult[] | undefined> {
    const queue = this.parts.queue
    const seen = newIds ? events.map(() => false) : await queue.seen(events.map((e) => e.id))
    const fresh = events.filter((_, i) => !seen[i])
    const duplicates = new Set(events.filter((_, i) => seen[i]).map((e) => e.id))
    if (fresh.length > 0) {
      let done: { duplicateIds: string[] } | undefined
      try {
        done = await peers.handOffDirect(fresh, kind, pipeline)
      } catch (err) {
        // An event too big for the mesh: no peer ever got it, and a retry cannot help.
        if (err instanceof BingeError && err.code === 'BINGE_PAYLOAD_TOO_LARGE') throw err
        throw new BingeError(
          'BINGE_OUTCOME_UNKNOWN',
          `a peer may or may not have stored the events (${asError(err).message}); retry with the same Idempotency-Key: the retry goes to that peer first, which drops a copy it has`,
          { retryAfter: 1, cause: err },
        )
      }
      if (!done) return undefined
      if (!newIds) await queue.remember(fresh.map((e) => e.id))
      for (const id of done.duplicateIds) duplicates.add(id)
    }
    return events.map((e) => ({ id: e.id, duplicate: duplicates.has(e.id) }))
  }
}

/** The tighter of the two event caps, and which setting it is (a final 413 names it). */
export function eventLimits(maxBodyBytes: number, maxEventsPerRequest: number, queueMaxEvents: number): EventLimits {
  if (queueMaxEvents < maxEventsPerRequest) {
    return {
      maxBytes: maxBodyBytes,
      maxEvents: queueMaxEvents,
      maxEventsReason: 'queue.maxEvents: the queue could never hold more at once',
    }
  }
  return { maxBytes: maxBodyBytes, maxEvents: maxEventsPerRequest, maxEventsReason: 'http.maxEventsPerRequest' }
}
