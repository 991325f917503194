import { NodeProcess, getJson, type LogLine } from '../node-process.js'

export interface FaultStats {
  node: string
  phase: string
  queue: { unprocessed: number; inflight: number; handingOff: number; deadletter: number }
  counters: Record<string, number>
  peers: Array<{ node: string; peerId: string; ageMs: number; connected: boolean; load: { depth: number; accepting: boolean } }>
}

export interface FaultNodeSpec {
  id: string
  workers: number
  /**
   * queue.maxEvents (default 100,000). Set just above the high-water mark (200), the
   * node is at its hard cap while it overflows, so ingest hands whole requests to peers
   * directly, and a fault on that peer mid-request answers the client 503
   * BINGE_OUTCOME_UNKNOWN: the peer may hold the events (the ledger counts them unknown).
   */
  maxEvents?: number
}

export class FaultNode {
  /** Every process this node has been, oldest first; the last is the current one. */
  readonly lives: NodeProcess[] = []
  peerId?: string

  constructor(
    readonly spec: FaultNodeSpec,
    readonly dataDir: string,
    readonly configFile: string,
    readonly httpPort: number,
  ) {}

  get id(): string {
    return this.spec.id
  }

  get proc(): NodeProcess | undefined {
    const p = this.lives.at(-1)
    return p?.alive ? p : undefined
  }

  get url(): string | undefined {
    return this.proc?.url
  }

  /** Spawn the node (again) and wait until it is ready and has joined the mesh. */
  async start(): Promise<void> {
    const proc = await NodeProcess.start(this.configFile, { label: this.id })
    this.lives.push(proc)
    const joined = await proc.waitForLog((l) => l.msg === 'The node joined the mesh.')
    this.peerId = String(joined.peerId)
  }

  async stats(): Promise<FaultStats> {
    const url = this.url
    if (url === undefined) throw new Error(`node ${this.id} is not running`)
    return getJson<FaultStats>(`${url}/stats`)
  }

  async kill9(): Promise<void> {
    await this.proc?.kill('SIGKILL')
  }

  /** SIGSTOP / SIGCONT through the child handle (never a reused pid). */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    const proc = this.proc
    if (!proc) throw new Error(`node ${this.id} is not running`)
    proc.child.kill(sig)
  }

  /** Log lines of the current process from index `from` on that match. */
  logsSince(from: number, match: (l: LogLine) => boolean): LogLine[] {
    return (this.proc?.logs ?? []).slice(from).filter(match)
  }
}

export function nodeConfig(
  spec: FaultNodeSpec,
  dataDir: string,
  httpPort: number,
  meshPort: number,
  peerPorts: number[],
  hookUrl: string,
): Record<string, unknown> {
  return {
    node: { id: spec.id, dataDir },
    http: { listen: `127.0.0.1:${httpPort}` },
    queue: { highWaterMark: 200, lowWaterMark: 50, maxEvents: spec.maxEvents ?? 100_000 },
    workers: spec.workers,
    log: { level: 'info' },
    mesh: {
      listen: `/ip4/127.0.0.1/tcp/${meshPort}`,
      // A key, as every mesh beyond one host has: the faults then cut connections
      // protected by the mesh's private network (private-network.ts), as in the field.
      psk: 'fault-mesh-key',
      bootstrap: peerPorts.map((p) => `127.0.0.1:${p}`),
      gossipInterval: '250ms',
      handoffTimeout: '2s',
      unreachablePeerTimeout: '10m',
    },
    pipelines: {
      p: {
        // 30 s: longer than a SIGSTOP, so a stopped node's pending POST does not time
        // out and get sent again (that would be an output duplicate, not a handoff one).
        outputs: [{ http: { url: hookUrl, timeout: '30s' } }],
        onFail: { retry: { attempts: 20, backoff: '50ms', maxBackoff: '1s' } },
      },
    },
  }
}
