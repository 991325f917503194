// The JSON the dashboard reads (docs/design.md §8): one node's view of itself
// (GET /dashboard/node.json, which nodes also read from each other) and the mesh as
// one node sees it (GET /dashboard/mesh.json, what the page polls). Type-only, shared
// by the server and the page's script; fields are only ever added (v stays 1).
import type { DashboardFigures, StatsCounters } from '../../metrics.js'
import type { DiskStatus, QueueDepth } from '../../queue/types.js'
import type { PeerView } from '../../mesh/peer-table.js'
import type { NodePhase } from '../api.js'

export type { PipelineFigures, StepFigures, PeerHandoffRates } from '../../metrics.js'

export interface QueueView extends QueueDepth {
  mode: 'durable' | 'memory'
  highWaterMark: number
  lowWaterMark: number
  maxEvents: number
}

/** GET /dashboard/node.json: one node, by itself. */
export interface NodeDashboard extends DashboardFigures {
  v: 1
  node: string
  peerId?: string
  phase: NodePhase
  /** When this was taken (ms since the epoch, the node's clock). */
  at: number
  uptimeSeconds: number
  queue: QueueView
  disk?: DiskStatus
  /** Takes new events now: ready, under its cap and above the free-disk watermark. */
  accepting: boolean
  counters: StatsCounters
  /** Its peers as it sees them: what they last announced, whether it holds a connection to them, how long ago it heard them. */
  peers: PeerView[]
  /** http.authToken is set: traces and dead letters need the bearer token. */
  authRequired: boolean
}

export type NodeState = 'ready' | 'recovering' | 'stopping' | 'unreachable'

/** One node on the mesh page. */
export interface MeshNodeCard {
  node: string
  peerId?: string
  /** Its HTTP API as this node reaches it. */
  http?: string
  /** The node that serves the page. */
  self: boolean
  state: NodeState
  /** ms since its last announcement reached the node that serves the page (0 for itself). */
  heardAgoMs: number
  /** Where the figures come from: itself over HTTP, or only its gossip (it did not answer). */
  source: 'self' | 'http' | 'gossip'
  /** Why there are only gossiped figures, or why the node is not believed. */
  problem?: string
  queue: Pick<QueueView, 'unprocessed' | 'inflight' | 'highWaterMark' | 'lowWaterMark' | 'maxEvents'> &
    Partial<Pick<QueueView, 'handingOff' | 'deadletter' | 'mode'>>
  accepting: boolean
  /** Events per second its pipelines finished lately. */
  drainRate: number
  /** Events per second arriving (accepted and handed in), over the last 10 s; absent from gossip alone. */
  inRate?: number
  pipelineNames: string[]
  /** The full figures, when the node answered. */
  detail?: NodeDashboard
}

/** A pair of nodes that hold a connection, and the events per second handed each way over the last minute. */
export interface MeshLink {
  a: string
  b: string
  aToB: number
  bToA: number
}

/** GET /dashboard/mesh.json: every node this node knows, and the links between them. */
export interface MeshDashboard {
  v: 1
  at: number
  self: string
  authRequired: boolean
  nodes: MeshNodeCard[]
  links: MeshLink[]
}
