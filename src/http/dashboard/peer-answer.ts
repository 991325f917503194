// The check a peer's GET /dashboard/node.json answer passes before the mesh view uses
// it: a peer is a mesh member, not an authority on what this node serves, so its answer
// is parsed against the shape this node itself writes (types.ts). Unknown fields are
// dropped (nothing a peer sends is passed on unchecked), lists and strings are bounded,
// and a malformed answer makes the peer a gossip-only card instead of breaking the page.
import { z } from 'zod'
import type { NodeDashboard } from './types.js'

const count = z.number().min(0)
const number = z.number()
const name = z.string().max(200)
const many = 1_000

const stage = { in: count, out: count, filtered: count, failed: count, deadlettered: count, p95Ms: count.optional() }

const peerView = z.object({
  node: name,
  peerId: name,
  http: z.string().max(300),
  load: z.object({
    depth: count,
    inflight: count,
    highWaterMark: count,
    lowWaterMark: count,
    maxEvents: count,
    accepting: z.boolean(),
    drainRate: count,
  }),
  pipelines: z.array(name).max(many),
  ageMs: number,
  connected: z.boolean(),
  conflict: z.boolean(),
  credit: number,
})

const nodeView = z.object({
  v: z.literal(1),
  node: name,
  peerId: name.optional(),
  phase: z.enum(['starting', 'recovering', 'ready', 'draining', 'stopped']),
  at: number,
  uptimeSeconds: number,
  queue: z.object({
    mode: z.enum(['durable', 'memory']),
    unprocessed: count,
    inflight: count,
    handingOff: count,
    deadletter: count,
    bytes: count,
    highWaterMark: count,
    lowWaterMark: count,
    maxEvents: count,
  }),
  disk: z
    .object({ freeBytes: count, totalBytes: count, minFreeBytes: count, belowWatermark: z.boolean(), storeFaulted: z.boolean() })
    .optional(),
  accepting: z.boolean(),
  counters: z.object({
    received: count,
    duplicates: count,
    processed: count,
    filtered: count,
    failed: count,
    deadlettered: count,
    dropped: count,
    handedOff: count,
    handedIn: count,
    takenBack: count,
    rejected: count,
  }),
  peers: z.array(peerView).max(many),
  authRequired: z.boolean(),
  rates: z.object({ in: count, finished: count, handedOff: count, handedIn: count }),
  handoffs: z.array(z.object({ peer: name, out: count, in: count, outTotal: count, inTotal: count })).max(many),
  pipelines: z
    .array(
      z.object({
        name,
        ...stage,
        otherwiseHandled: count,
        steps: z.array(z.object({ index: count, kind: name, ...stage })).max(many),
      }),
    )
    .max(many),
})

// The schema and the type describe one shape: this fails to compile when they part.
const _sameShape: (v: z.output<typeof nodeView>) => NodeDashboard = (v) => v
void _sameShape

/** The peer's view if `body` is one of the node `expected`, else why it is not. */
export function checkPeerAnswer(body: unknown, expected: string): NodeDashboard | string {
  const parsed = nodeView.safeParse(body)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return `its figures are malformed (${issue ? `${issue.path.join('.').slice(0, 100)}: ${issue.code}` : 'bad shape'})`
  }
  if (parsed.data.node !== expected) return `it answered as node "${parsed.data.node.slice(0, 100)}"`
  return parsed.data
}
