// The figures behind the dashboard (docs/design.md §8). A node describes itself
// (nodeDashboard); the mesh view is this node's description plus each peer's, fetched
// from the peer's own GET /dashboard/node.json, so the page shows every node from any
// node with one request. A peer that does not answer in time is not an error: its card
// keeps what its gossip said, and it is shown unreachable when the mesh lost it too.
// Design constraints: a peer's answer is untrusted input (parsed by peer-answer.ts,
// capped in size, never echoed); fetches are bounded in time and shared by concurrent
// page loads (routes.ts).
import type { PeerView } from '../../mesh/peer-table.js'
import type { NodeApi } from '../api.js'
import { checkPeerAnswer } from './peer-answer.js'
import type { MeshDashboard, MeshLink, MeshNodeCard, NodeDashboard, NodeState } from './types.js'

/** How long the mesh view waits for a peer's figures: the page polls every second. */
export const peerFetchTimeoutMs = 1_200
const maxPeerAnswerBytes = 2 * 1024 * 1024
/** A node that does not answer over HTTP and was not heard from for longer is shown unreachable. */
const staleAfterMs = 10_000

export function nodeDashboard(node: NodeApi, authRequired: boolean): NodeDashboard {
  const stats = node.stats()
  const { marks, figures } = node.dashboard()
  const q = stats.queue
  return {
    v: 1,
    node: stats.node,
    ...(stats.peerId === undefined ? {} : { peerId: stats.peerId }),
    phase: stats.phase,
    at: Date.now(),
    uptimeSeconds: stats.uptimeSeconds,
    queue: { ...q, ...marks },
    ...(stats.disk ? { disk: stats.disk } : {}),
    accepting: stats.phase === 'ready' && q.unprocessed + q.inflight < marks.maxEvents && !stats.disk?.belowWatermark,
    counters: stats.counters,
    peers: stats.peers,
    authRequired,
    ...figures,
  }
}

function stateOf(phase: NodeDashboard['phase']): NodeState {
  if (phase === 'ready') return 'ready'
  if (phase === 'draining' || phase === 'stopped') return 'stopping'
  return 'recovering'
}

function cardOf(view: NodeDashboard, self: boolean, http?: string, heardAgoMs = 0): MeshNodeCard {
  const q = view.queue
  return {
    node: view.node,
    ...(view.peerId === undefined ? {} : { peerId: view.peerId }),
    ...(http === undefined ? {} : { http }),
    self,
    state: stateOf(view.phase),
    heardAgoMs,
    source: self ? 'self' : 'http',
    queue: q,
    accepting: view.accepting,
    drainRate: view.rates.finished,
    inRate: Math.round((view.rates.in + view.rates.handedIn) * 100) / 100,
    pipelineNames: view.pipelines.map((p) => p.name),
    detail: view,
  }
}

/** Reads a peer's GET /dashboard/node.json: its parsed body, or an Error saying why there is none. */
export type FetchView = (httpUrl: string) => Promise<unknown>

class PeerAnswerError extends Error {
  override readonly name = 'PeerAnswerError'
}

export const fetchPeerView: FetchView = async (httpUrl) => {
  let text: string
  try {
    const res = await fetch(`${httpUrl.replace(/\/+$/, '')}/dashboard/node.json`, {
      signal: AbortSignal.timeout(peerFetchTimeoutMs),
      redirect: 'error',
    })
    if (res.status !== 200) {
      await res.body?.cancel()
      throw new PeerAnswerError(`its HTTP API answered ${res.status}`)
    }
    text = await boundedText(res, maxPeerAnswerBytes)
  } catch (err) {
    if (err instanceof PeerAnswerError) throw err
    const e = err as { name?: string; cause?: { code?: string } }
    throw new PeerAnswerError(
      e.name === 'TimeoutError'
        ? `its HTTP API did not answer within ${peerFetchTimeoutMs} ms`
        : `its HTTP API is unreachable (${e.cause?.code ?? e.name ?? 'error'})`,
    )
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new PeerAnswerError('its answer was not JSON')
  }
}

/** The body as text, read no further than `limit` bytes (a peer may not make this node buffer more). */
async function boundedText(res: Response, limit: number): Promise<string> {
  const reader = res.body?.getReader()
  if (!reader) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw new PeerAnswerError('its answer was too large')
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The peer's view, or why there is none (its message only: an answer is never echoed). */
async function askPeer(fetchView: FetchView, httpUrl: string, node: string): Promise<NodeDashboard | string> {
  try {
    return checkPeerAnswer(await fetchView(httpUrl), node)
  } catch (err) {
    return err instanceof PeerAnswerError ? err.message : 'its HTTP API could not be read'
  }
}

/** A card from what a node's peer list says of a node that did not answer itself. */
function gossipCard(peer: PeerView, problem: string, relayedBy?: string): MeshNodeCard {
  const l = peer.load
  const stale = peer.ageMs > staleAfterMs
  return {
    node: peer.node,
    peerId: peer.peerId,
    http: peer.http,
    self: false,
    // It did not answer: unreachable when this node lost its connection to it or its
    // gossip went quiet (a frozen node keeps its connection); else its gossip stands.
    state: peer.conflict || stale || (!peer.connected && relayedBy === undefined) ? 'unreachable' : 'ready',
    heardAgoMs: peer.ageMs,
    source: 'gossip',
    problem: peer.conflict
      ? 'another peer id announced this node name first: not believed'
      : relayedBy === undefined
        ? problem
        : `${problem}; known through ${relayedBy}`,
    queue: {
      unprocessed: l.depth,
      inflight: l.inflight,
      highWaterMark: l.highWaterMark,
      lowWaterMark: l.lowWaterMark,
      maxEvents: l.maxEvents,
    },
    accepting: l.accepting,
    drainRate: l.drainRate,
    pipelineNames: peer.pipelines,
  }
}

/**
 * The mesh as `self` sees it: itself, each peer it knows (with the peer's own figures
 * when it answers), nodes only its peers know, and the links between them.
 */
export async function meshDashboard(self: NodeDashboard, fetchView: FetchView = fetchPeerView): Promise<MeshDashboard> {
  const cards = new Map<string, MeshNodeCard>([[self.node, cardOf(self, true)]])
  const believed = self.peers.filter((p) => !p.conflict && p.node !== self.node)
  const answers = await Promise.all(believed.map((p) => askPeer(fetchView, p.http, p.node)))
  const views: NodeDashboard[] = [self]
  believed.forEach((peer, i) => {
    const answer = answers[i]!
    if (typeof answer !== 'string') {
      views.push(answer)
      cards.set(peer.node, cardOf(answer, false, peer.http, peer.ageMs))
      return
    }
    cards.set(peer.node, gossipCard(peer, answer))
  })
  for (const p of self.peers) if (p.conflict && !cards.has(p.node)) cards.set(p.node, gossipCard(p, ''))
  // Nodes that only a peer knows: shown as that peer sees them.
  for (const view of views.slice(1)) {
    for (const p of view.peers) {
      if (cards.has(p.node) || p.conflict) continue
      cards.set(p.node, gossipCard(p, 'not a peer of this node', view.node))
    }
  }
  return {
    v: 1,
    at: Date.now(),
    self: self.node,
    authRequired: self.authRequired,
    nodes: [...cards.values()],
    links: linksOf(views, cards),
  }
}

/**
 * A link for each pair of nodes one of them says it is connected to, with the events per
 * second each way: the sender's count where we have it, else the receiver's.
 */
function linksOf(views: NodeDashboard[], cards: Map<string, MeshNodeCard>): MeshLink[] {
  const byNode = new Map(views.map((v) => [v.node, v]))
  const links = new Map<string, MeshLink>()
  const rate = (from: string, to: string): number => {
    const sender = byNode.get(from)?.handoffs.find((h) => h.peer === to)
    if (sender) return sender.out
    return byNode.get(to)?.handoffs.find((h) => h.peer === from)?.in ?? 0
  }
  const add = (x: string, y: string) => {
    if (x === y || !cards.has(x) || !cards.has(y)) return
    const [a, b] = x < y ? [x, y] : [y, x]
    const key = `${a}\u0000${b}`
    if (!links.has(key)) links.set(key, { a, b, aToB: rate(a, b), bToA: rate(b, a) })
  }
  for (const v of views) {
    for (const p of v.peers) if (p.connected && !p.conflict) add(v.node, p.node)
    // A link that carried events lately stays drawn after the connection dropped.
    for (const h of v.handoffs) if (h.out > 0 || h.in > 0) add(v.node, h.peer)
  }
  return [...links.values()]
}
