// POST /events and POST /events/NAME: the hot path of every node. One handler, reached
// two ways: straight from Node's request listener (`ingestListener`, what a node
// serves), and as a Hono route (what `app.request()` in tests reaches). Both read the
// same headers, call the same `acceptRequest`, and render the same JSON for a result or
// an error (`errorAnswer`, which Hono's onError uses too), so the two cannot drift.
// Why not Hono alone: building a Web Request and Response per event was measured at
// about as much CPU as the durable enqueue itself (a bare Node no-op answers 1.7-2x as
// many requests per second as the same no-op routed through the adapter).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { BingeError } from '../errors.js'
import type { NodeApi, NodePhase } from './api.js'
import { bodyFormat, readNodeBody } from './body.js'

export interface IngestRouteOptions {
  /** Bytes of body read at most; the event limits are the node's, the same at every door. */
  maxBodyBytes: number
  authToken: string
  /** Called for each rejected ingest request, with a short reason, for metrics. */
  onReject?: (reason: string) => void
}

/** What the route needs of a request, whichever way it came. */
export interface IngestRequest {
  header(name: string): string | undefined
  /** The body's bytes, at most `limit` (more: a 413); the event parser decodes them. */
  body(limit: number): Promise<Uint8Array>
}

/** An answer as both transports render it: status, extra headers, a JSON body. */
export interface JsonAnswer {
  status: number
  headers: Record<string, string>
  body: Record<string, unknown>
}

const idempotencyKeyPattern = /^[\x21-\x7e]{1,200}$/

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '')
  const wanted = Buffer.from(token)
  return given.length === wanted.length && timingSafeEqual(given, wanted)
}

/** Throws BINGE_UNAUTHORIZED unless the request carries the node's token (when it has one). */
export function checkToken(authorization: string | undefined, token: string): void {
  if (token !== '' && !tokenMatches(authorization, token)) {
    throw new BingeError('BINGE_UNAUTHORIZED', 'missing or wrong bearer token in the Authorization header')
  }
}

/** The error as JSON with its status (a BingeError's own, else a 500 that hides the cause). */
export function errorAnswer(err: unknown, phase: NodePhase): JsonAnswer {
  const e = err instanceof BingeError ? err : new BingeError('BINGE_INTERNAL', 'internal error', { cause: err })
  const headers: Record<string, string> = {}
  if (e.retryAfter !== undefined) headers['Retry-After'] = String(e.retryAfter)
  // Shutting down: tell keep-alive clients to go, so their sockets do not hold the stop.
  if (e.code === 'BINGE_NOT_READY' && (phase === 'draining' || phase === 'stopped')) headers.Connection = 'close'
  return { status: e.status, headers, body: { error: e.message, code: e.code, ...e.details } }
}

/** One ingest request through the node's door: the ids (and duplicates) on success, else it throws. */
export async function acceptRequest(
  node: NodeApi,
  options: IngestRouteOptions,
  request: IngestRequest,
  pipeline: string | undefined,
): Promise<Record<string, unknown>> {
  try {
    checkToken(request.header('authorization'), options.authToken)
    const key = request.header('idempotency-key')
    if (key !== undefined && !idempotencyKeyPattern.test(key)) {
      throw new BingeError('BINGE_BAD_REQUEST', 'the Idempotency-Key header must be 1-200 printable ASCII characters without spaces')
    }
    const format = bodyFormat(request.header('content-type'))
    const payload = await request.body(options.maxBodyBytes)
    const results = await node.accept(payload, { format, idempotencyKey: key, pipeline })
    const body: Record<string, unknown> = { ids: results.map((r) => r.id) }
    let duplicates: string[] | undefined
    for (const r of results) if (r.duplicate) (duplicates ??= []).push(r.id)
    if (duplicates) {
      body.duplicate = duplicates.length === results.length
      body.duplicates = duplicates
    }
    return body
  } catch (err) {
    options.onReject?.(err instanceof BingeError ? err.code : 'BINGE_INTERNAL')
    throw err
  }
}

/**
 * The pipeline a POST to `url` names: undefined for /events, the name for /events/NAME,
 * and null when the URL is not an ingest route this listener serves as is (anything
 * else, or a name needing percent-decoding: Hono's router takes those).
 */
export function ingestTarget(url: string): string | undefined | null {
  const end = url.indexOf('?')
  const path = end < 0 ? url : url.slice(0, end)
  if (path === '/events') return undefined
  if (!path.startsWith('/events/')) return null
  const name = path.slice(8)
  return name === '' || name.includes('/') || name.includes('%') ? null : name
}

function send(res: ServerResponse, answer: JsonAnswer): void {
  const text = JSON.stringify(answer.body)
  res.writeHead(answer.status, { ...answer.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * Writes the answers settled during one turn of the event loop together, at its end
 * (setImmediate runs after the poll phase has read every socket that was ready), as
 * Redis writes its replies just before its loop sleeps. Written one by one as each
 * settles, an answer wakes its client, whose next request arrives before the node has
 * read the others: a ping-pong of one request per wake-up on both sides. In memory mode,
 * whose answers settle one at a time, that cost 1.6x the main-thread CPU per
 * single-event POST and 0.6x the rate (six alternating runs, 50 connections on this
 * 2-core machine); durable groups already settle together, and cost the same either
 * way. An answer waits at most for the rest of the turn.
 */
class TurnWriter {
  /** Answers to write at the end of this turn; non-empty exactly while a flush is scheduled. */
  private pending: Array<[ServerResponse, JsonAnswer]> = []

  add(res: ServerResponse, answer: JsonAnswer): void {
    if (this.pending.push([res, answer]) === 1) setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    const writes = this.pending
    this.pending = []
    for (const [res, answer] of writes) {
      try {
        send(res, answer)
      } catch {
        // One answer that cannot be written must not hold back the others; its client sees the connection close.
        res.destroy()
      }
    }
  }
}

/**
 * A Node request listener for the ingest routes: it answers POST /events[/NAME] itself
 * and returns true, or returns false and leaves the request to the next listener.
 */
export function ingestListener(node: NodeApi, options: IngestRouteOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const answers = new TurnWriter()
  return (req, res) => {
    if (req.method !== 'POST') return false
    const pipeline = ingestTarget(req.url ?? '')
    if (pipeline === null) return false
    const request: IngestRequest = {
      header: (name) => {
        const value = req.headers[name]
        return Array.isArray(value) ? value.join(', ') : value
      },
      body: (limit) => readNodeBody(req, req.headers['content-length'], limit),
    }
    acceptRequest(node, options, request, pipeline).then(
      (body) => answers.add(res, { status: 202, headers: {}, body }),
      (err: unknown) => answers.add(res, errorAnswer(err, node.phase())),
    )
    return true
  }
}
