// What the HTTP layer needs from a node, and nothing more: routes depend on this
// narrow contract, so they are tested in memory without a store or a socket.
import type { DeadLetter, DiskStatus, EnqueueResult, JsonObject, QueueDepth } from '../queue/types.js'
import type { DashboardFigures, StatsCounters } from '../metrics.js'
import type { TraceStep } from '../trace.js'
import type { PeerView } from '../mesh/peer-table.js'

export type NodePhase = 'starting' | 'recovering' | 'ready' | 'draining' | 'stopped'

export interface IngestOptions {
  idempotencyKey?: string
  /** Only this pipeline (POST /events/NAME). */
  pipeline?: string
  /** The body was an array or NDJSON, so keyed ids get a -N suffix even for one event. */
  batch?: boolean
}

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
  ingest(events: JsonObject[], options: IngestOptions): Promise<EnqueueResult[]>
  hasPipeline(name: string): boolean
  stats(): NodeStats
  dashboard(): NodeDashboardParts
  metrics(): Promise<{ contentType: string; body: string }>
  trace(id: string): Promise<TraceStep[] | undefined>
  listDeadletter(limit: number): Promise<{ count: number; events: DeadLetter[] }>
  replayDeadletter(ids?: string[]): Promise<string[]>
}
