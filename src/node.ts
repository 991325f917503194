// One binge node: the composition root. It builds the parts (queue, pipelines, workers,
// the one ingest door, inputs, mesh, HTTP) from the config, wires each to the narrow
// set of others it needs, and owns the order they start and stop in. Start: HTTP listens
// first (so /healthz answers and ingest says 503 while recovering), then the queue
// recovers its in-flight events, outputs open, the mesh joins, workers start, the node is
// ready, and only then do inputs (MQTT, ...) subscribe. A part that fails to start stops
// what started, last first (util/startable.ts). Stop: inputs stop taking messages,
// HTTP refuses new requests and lets those inside finish, the mesh leaves, workers
// finish or give back, outputs close, the store closes. Every acknowledged event is on
// disk throughout. The node holds no policy of its own: admission is src/ingest/. libp2p
// is loaded only by a node whose config has a mesh section (in start()).

import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Hono } from 'hono'
import { uuidv7 } from './ids.js'
import type { Config } from './config/schema.js'
import type { NodeApi, NodeDashboardParts, NodePhase, NodeStats } from './http/api.js'
import { createApp } from './http/app.js'
import { HttpServer } from './http/server.js'
import { ingestListener } from './http/ingest-route.js'
import { Ingest, eventLimits, type AcceptRequest } from './ingest/ingest.js'
import { registerInputMetrics } from './inputs/input-metrics.js'
import { buildInput, inputNames } from './inputs/registry.js'
import type { Input, InputStatus } from './inputs/types.js'
import { createLogger, type Logger } from './log.js'
import { asError } from './errors.js'
import type { Mesh, MeshComponents } from './mesh/mesh.js'
import { Metrics } from './metrics.js'
import { Engine } from './pipeline/engine.js'
import { meshForwarder } from './pipeline/outputs/forward.js'
import { Pipeline } from './pipeline/pipeline.js'
import { WorkerPool } from './pipeline/workers.js'
import { createQueue } from './queue/index.js'
import type { DeadLetter, EnqueueResult, EventMeta, EventQueue } from './queue/types.js'
import { TraceStore, type TraceStep } from './trace.js'
import { startAll, stopAll, type Startable } from './util/startable.js'

export interface NodeOptions {
  log?: Logger
  /** Collect Node.js process metrics (off in tests that run several nodes in one process). */
  processMetrics?: boolean
  /** Add routes to the node's HTTP app before it listens (benchmarks add a no-op route). */
  extendApp?: (app: Hono) => void
}

export class BingeNode implements NodeApi {
  readonly nodeId: string
  readonly log: Logger
  readonly queue: EventQueue
  private readonly metricsStore: Metrics
  private readonly traces: TraceStore
  private readonly engine: Engine
  private readonly workers: WorkerPool
  private readonly http: HttpServer
  /** Made in start(), only when the config has a mesh section: a node without one never loads libp2p. */
  mesh?: Mesh
  private readonly meshComponents?: MeshComponents
  /** The one door every way in goes through (HTTP, inputs). */
  private readonly door: Ingest
  private readonly inputs: Input[]
  /** The HTTP app, for in-memory requests (`app.request()`) in tests. */
  readonly app: Hono
  private currentPhase: NodePhase = 'starting'
  /** The start under way or done, which a stop waits for (start()). */
  private starting?: Promise<AddressInfo>
  private readonly startedAt = Date.now()

  constructor(
    readonly config: Config,
    options: NodeOptions = {},
  ) {
    this.nodeId = config.node.id
    this.log = options.log ?? createLogger(config.log.level, { node: this.nodeId })
    const q = config.queue
    this.queue = createQueue({
      mode: q.mode,
      dir: join(config.node.dataDir, 'queue'),
      sync: q.sync,
      maxEvents: q.maxEvents,
      maxBytes: q.maxBytes,
      // A handoff may be resent until the sender gives up on the peer; the index that
      // drops those resends must outlive that, or a late resend becomes a duplicate.
      dedupeWindowMs: config.mesh ? Math.max(q.dedupeWindow, 2 * config.mesh.unreachablePeerTimeout) : q.dedupeWindow,
      onSweepError: (err) => this.log.warn({ err: String(err) }, 'Sweeping old idempotency keys failed; it is retried on the next tick.'),
      minFreeDisk: q.minFreeDisk,
      onDiskChange: (d) => {
        const fields = { freeBytes: d.freeBytes, minFreeBytes: d.minFreeBytes, totalBytes: d.totalBytes }
        if (d.belowWatermark)
          this.log.warn(fields, 'The data volume is below queue.minFreeDisk: new events go to peers or get 429 until the backlog drains.')
        else this.log.info(fields, 'The data volume is back above queue.minFreeDisk: the node takes new events again.')
      },
      onStoreFault: (err) =>
        this.log.error(
          { err: err.message },
          'A write failed because the data volume is full: the node answers 503 and reopens its store once there is space; nothing acknowledged is lost.',
        ),
      onStoreHealRetry: (err, attempt) => {
        const cause = asError(err).cause
        if (attempt === 1 || attempt % 30 === 0)
          this.log.warn(
            { attempt, err: asError(err).message, ...(cause ? { cause: asError(cause).message } : {}) },
            'The store could not reopen yet (the data volume is still full); it keeps trying.',
          )
      },
      onStoreHealed: (attempts, ms) =>
        this.log.info({ attempts, ms: Math.round(ms) }, 'The store reopened after the data volume was full; writes go on.'),
    })
    this.metricsStore = new Metrics(this.nodeId, () => this.queue.depth(), {
      defaultMetrics: options.processMetrics ?? true,
      disk: () => this.queue.diskStatus(),
    })
    this.traces = new TraceStore(this.nodeId)
    const deps = {
      nodeId: this.nodeId,
      log: this.log,
      metrics: this.metricsStore,
      trace: this.traces,
      forward: meshForwarder(() => this.mesh),
      // Stateful steps load their state from the queue's store and commit it with the acks.
      state: this.queue,
    }
    const pipelines = Object.entries(config.pipelines).map(([name, p]) => new Pipeline({ name, ...p }, deps))
    this.engine = new Engine(pipelines, this.log, this.traces)
    this.workers = new WorkerPool({ workers: config.workers, queue: this.queue, engine: this.engine, log: this.log, trace: this.traces })
    const routeOptions = {
      maxBodyBytes: config.http.maxBodyBytes,
      authToken: config.http.authToken,
      onReject: (reason: string) => this.metricsStore.rejectedRequest(reason),
    }
    const app = (this.app = createApp(this, routeOptions))
    options.extendApp?.(app)
    if (config.mesh) {
      const metrics = this.metricsStore
      this.meshComponents = {
        nodeId: this.nodeId,
        dataDir: config.node.dataDir,
        queue: this.queue,
        log: this.log,
        trace: this.traces,
        highWaterMark: q.highWaterMark,
        lowWaterMark: q.lowWaterMark,
        maxEvents: q.maxEvents,
        maxEventBytes: config.http.maxBodyBytes,
        httpAddress: () => {
          const a = this.http.address()
          return a ? `${a.address}:${a.port}` : config.http.listen
        },
        pipelines: () => this.engine.pipelines.map((p) => p.name),
        relay: this.engine.pipelines.length === 0,
        hasPipeline: (name) => this.engine.has(name),
        accepting: () => this.currentPhase === 'ready',
        finishedCount: () => metrics.counters.processed + metrics.counters.filtered + metrics.counters.failed,
        handoff: (direction, count, peer) => metrics.handoff(direction, count, peer),
      }
      metrics.peerCount = () => this.mesh?.peers().filter((p) => p.connected).length ?? 0
    }
    const traces = this.traces
    this.door = new Ingest({
      nodeId: this.nodeId,
      queue: this.queue,
      trace: (id, step, detail) => traces.add(id, step, detail === undefined ? undefined : { detail }),
      accepted: (count, duplicates, seconds) => this.metricsStore.accepted(count, duplicates, seconds),
      phase: () => this.currentPhase,
      runsPipeline: (name) => this.engine.has(name),
      peers: () => this.mesh,
      limits: eventLimits(config.http.maxBodyBytes, config.http.maxEventsPerRequest, q.maxEvents),
    })
    const names = inputNames(config.inputs)
    this.inputs = config.inputs.map((item, i) =>
      buildInput(item, {
        nodeId: this.nodeId,
        name: names[i]!,
        log: this.log.child({ input: names[i] }),
        accept: (payload, request) => this.door.accept(payload, request),
        deadLetter: (raw, meta, error) => this.deadLetterPayload(names[i]!, raw, meta, error),
      }),
    )
    if (this.inputs.length > 0) registerInputMetrics(this.metricsStore.registry, () => this.inputStatus())
    this.http = new HttpServer(app, {
      listen: config.http.listen,
      requestTimeoutMs: config.http.requestTimeout,
      first: ingestListener(this, routeOptions),
    })
  }

  /**
   * Start every part in order: HTTP (it answers /healthz at once, /readyz once ready),
   * the queue's recovery, pipelines, the mesh, workers, inputs. A stop() called while
   * this runs (a SIGTERM right after the health check turned green) waits for it to
   * settle, then stops what it started: stopping parts half-way through their start
   * would turn a clean stop into a failed start.
   */
  start(): Promise<AddressInfo> {
    const starting = this.startParts()
    this.starting = starting
    return starting
  }

  private async startParts(): Promise<AddressInfo> {
    if (this.config.mesh && this.meshComponents && !this.mesh) {
      const { Mesh } = await import('./mesh/mesh.js')
      this.mesh = new Mesh(this.config.mesh, this.meshComponents)
    }
    const http: Startable = {
      start: async () => {
        const address = await this.http.start()
        this.log.info({ http: `${address.address}:${address.port}` }, 'The node is listening and recovering its queue.')
        this.currentPhase = 'recovering'
      },
      stop: () => this.http.stop(),
    }
    const queue: Startable = {
      start: async () => {
        if (this.queue.mode === 'memory')
          this.log.warn('The queue is in memory mode: events are not crash-safe and a crash loses what it holds.')
        this.log.info(await this.queue.open(), 'Queue recovery finished.')
      },
      stop: () => this.queue.close(),
    }
    // A relay (mesh, no pipelines) keeps its events for the offloader to hand on;
    // workers would only ack them as matching nothing.
    const workers: Startable = this.isRelay() ? { start: () => undefined, stop: () => undefined } : this.workers
    const ready: Startable = {
      start: () => {
        this.currentPhase = 'ready'
        this.log.info({ pipelines: this.engine.pipelines.map((p) => p.name), workers: this.config.workers }, 'The node is ready.')
      },
      stop: () => undefined,
    }
    try {
      await startAll([http, queue, this.engine, ...(this.mesh ? [this.mesh] : []), workers, ready, ...this.inputs], (err) =>
        this.log.warn({ err: asError(err).message }, 'A part of the node failed to stop while a failed start was undone.'),
      )
    } catch (err) {
      this.currentPhase = 'stopped'
      throw err
    }
    return this.http.address()!
  }

  async stop(): Promise<void> {
    // A failed start undid itself (phase stopped); a successful one is stopped below.
    await this.starting?.catch(() => undefined)
    if (this.currentPhase === 'stopped' || this.currentPhase === 'draining') return
    this.currentPhase = 'draining'
    this.log.info('The node is shutting down.')
    // Last first: inputs stop taking messages, HTTP stops taking requests, the mesh
    // leaves, workers finish or give back their events, outputs close, the store closes.
    const store: Startable = { start: () => undefined, stop: () => this.queue.close() }
    const parts: Startable[] = [store, this.engine, this.workers, ...(this.mesh ? [this.mesh] : []), this.http, ...this.inputs]
    await stopAll(parts, (err) => this.log.error({ err: asError(err).message }, 'A part of the node failed to stop cleanly.'))
    this.currentPhase = 'stopped'
    this.log.info('The node stopped cleanly.')
  }

  private isRelay(): boolean {
    return this.mesh !== undefined && this.engine.pipelines.length === 0
  }

  httpAddress(): AddressInfo | undefined {
    return this.http.address()
  }

  phase(): NodePhase {
    return this.currentPhase
  }

  accept(payload: string | Uint8Array, request: AcceptRequest): Promise<EnqueueResult[]> {
    return this.door.accept(payload, request)
  }

  /** An input's payload that can never be taken, kept as a dead letter with its raw text. */
  private async deadLetterPayload(input: string, raw: string, meta: EventMeta, error: string): Promise<void> {
    const event = { id: uuidv7(), origin: this.nodeId, receivedAt: Date.now(), hops: 0, meta, data: { raw } }
    await this.queue.putDeadletter(event, { pipeline: `input:${input}`, error, attempts: 1 })
    this.traces.add(event.id, 'deadlettered', { detail: error })
  }

  inputStatus(): InputStatus[] {
    return this.inputs.map((input) => input.status())
  }

  stats(): NodeStats {
    const disk = this.queue.diskStatus()
    return {
      node: this.nodeId,
      phase: this.currentPhase,
      queue: { mode: this.queue.mode, ...this.queue.depth() },
      ...(disk ? { disk } : {}),
      counters: { ...this.metricsStore.counters },
      ...(this.mesh ? { peerId: this.mesh.peerId() } : {}),
      peers: this.mesh?.peers() ?? [],
      ...(this.inputs.length > 0 ? { inputs: this.inputStatus() } : {}),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
    }
  }

  dashboard(): NodeDashboardParts {
    const q = this.config.queue
    return {
      marks: { highWaterMark: q.highWaterMark, lowWaterMark: q.lowWaterMark, maxEvents: q.maxEvents },
      figures: this.metricsStore.figures(this.engine.pipelines.map((p) => p.name)),
    }
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.metricsStore.registry.contentType, body: await this.metricsStore.registry.metrics() }
  }

  /** The event's trace here, followed across handoffs to the peers that hold it. */
  async trace(id: string): Promise<TraceStep[] | undefined> {
    const local = this.traces.get(id)
    if (!local || !this.mesh) return local
    const remote = await this.mesh.remoteTrace(local, id)
    return [...local, ...remote]
  }

  async listDeadletter(limit: number): Promise<{ count: number; events: DeadLetter[] }> {
    return { count: this.queue.depth().deadletter, events: await this.queue.listDeadletter(limit) }
  }

  async replayDeadletter(ids?: string[]): Promise<string[]> {
    const replayed = await this.queue.replayDeadletter(ids)
    for (const id of replayed) this.traces.add(id, 'replayed')
    return replayed
  }
}
