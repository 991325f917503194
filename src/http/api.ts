// What the HTTP layer needs from a node, and nothing more: routes depend on this
// narrow contract, so they are tested in memory without a store or a socket.
import type { AcceptRequest } from '../ingest/ingest.js'
import type { InputStatus } from '../inputs/types.js'
import type { DeadLetter, DiskStatus, EnqueueResult, QueueDepth } from '../queue/types.js'
import type { DashboardFigures, StatsCounters } from '../metrics.js'
import type { TraceStep } from '../trace.js'
import type { PeerView } from '../mesh/peer-table.js'

export type NodePhase = 'starting' | 'recovering' | 'ready' | 'draining' | 'stopped'

export interface NodeStats {
  node: string
  phase: NodePhase
  queue: QueueDepth & { mode: 'durable' | 'memory' }
  /** The data volume against queue.minFreeDisk (durable mode only). */
  disk?: DiskStatus
  counters: StatsCounters
  /** This node's libp2p peer id, when it is in a mesh. */
  peerId?: string
  peers: PeerView[]
  /** Inputs besides HTTP (`inputs:`), when the config has any. */
  inputs?: InputStatus[]
  uptimeSeconds: number
}

/** What the dashboard needs beyond /stats (docs/design.md §8). */
export interface NodeDashboardParts {
  marks: { highWaterMark: number; lowWaterMark: number; maxEvents: number }
  figures: DashboardFigures
}

export interface NodeApi {
  readonly nodeId: string
  phase(): NodePhase
  /** One request body through the node's one door (src/ingest/ingest.ts). */
  accept(payload: string | Uint8Array, request: AcceptRequest): Promise<EnqueueResult[]>
  stats(): NodeStats
  dashboard(): NodeDashboardParts
  metrics(): Promise<{ contentType: string; body: string }>
  trace(id: string): Promise<TraceStep[] | undefined>
  listDeadletter(limit: number): Promise<{ count: number; events: DeadLetter[] }>
  replayDeadletter(ids?: string[]): Promise<string[]>
}
