// One binge node: wires config, queue, pipelines, workers and HTTP, and owns the order
// they start and stop in. Start: HTTP listens first (so /healthz answers and ingest
// says 503 while recovering), then the queue recovers its in-flight events, outputs
// open, workers start, and only then is the node ready. Stop is the reverse: refuse
// new requests, let requests inside finish, stop workers (finish or give back), close
// outputs, close the store. Every acknowledged event is on disk throughout.
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Hono } from 'hono'
import { uuidv7 } from './ids.js'
import type { Config } from './config/schema.js'
import type { IngestOptions, NodeApi, NodePhase, NodeStats } from './http/api.js'
import { createApp } from './http/app.js'
import { HttpServer } from './http/server.js'
import { createLogger, type Logger } from './log.js'
import { BingeError, asError } from './errors.js'
import type { Mesh, MeshComponents } from './mesh/mesh.js'
import { Metrics } from './metrics.js'
import { Engine } from './pipeline/engine.js'
import { meshForwarder } from './pipeline/outputs/forward.js'
import { Pipeline } from './pipeline/pipeline.js'
import { WorkerPool } from './pipeline/workers.js'
import { createQueue } from './queue/index.js'
import type { DeadLetter, EnqueueResult, EventQueue, EventRecord, JsonObject } from './queue/types.js'
import { TraceStore, type TraceStep } from './trace.js'
import { startAll, type Startable } from './util/startable.js'

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
  /** The HTTP app, for in-memory requests (`app.request()`) in tests. */
  readonly app: Hono
  private currentPhase: NodePhase = 'starting'
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
      getState: (key: string) => this.queue.getState(key),
    }
    const pipelines = Object.entries(config.pipelines).map(([name, p]) => new Pipeline({ name, ...p }, deps))
    this.engine = new Engine(pipelines, this.log, this.traces)
    this.workers = new WorkerPool({ workers: config.workers, queue: this.queue, engine: this.engine, log: this.log, trace: this.traces })
    const app = (this.app = createApp(this, {
      maxBodyBytes: config.http.maxBodyBytes,
      maxEventsPerRequest: config.http.maxEventsPerRequest,
      queueMaxEvents: q.maxEvents,
      authToken: config.http.authToken,
      onReject: (reason) => this.metricsStore.rejectedRequest(reason),
    }))
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
        handoff: (direction, count) => metrics.handoff(direction, count),
      }
      metrics.peerCount = () => this.mesh?.peers().filter((p) => p.connected).length ?? 0
    }
    this.http = new HttpServer(app, { listen: config.http.listen, requestTimeoutMs: config.http.requestTimeout })
  }

  async start(): Promise<AddressInfo> {
    if (this.config.mesh && this.meshComponents && !this.mesh) {
      const { Mesh } = await import('./mesh/mesh.js')
      this.mesh = new Mesh(this.config.mesh, this.meshComponents)
    }
    const address = await this.http.start()
    this.log.info({ http: `${address.address}:${address.port}` }, 'The node is listening and recovering its queue.')
    this.currentPhase = 'recovering'
    if (this.queue.mode === 'memory')
      this.log.warn('The queue is in memory mode: events are not crash-safe and a crash loses what it holds.')
    const queue: Startable = {
      start: async () => this.log.info(await this.queue.open(), 'Queue recovery finished.'),
      stop: () => this.queue.close(),
    }
    const http: Startable = { start: () => undefined, stop: () => this.http.stop() }
    try {
      await startAll([http, queue, this.engine, ...(this.mesh ? [this.mesh] : [])], (err) =>
        this.log.warn({ err: asError(err).message }, 'A part of the node failed to stop while a failed start was undone.'),
      )
    } catch (err) {
      this.currentPhase = 'stopped'
      throw err
    }
    // A relay (mesh, no pipelines) keeps its events for the offloader to hand on;
    // workers would only ack them as matching nothing.
    if (!this.isRelay()) this.workers.start()
    this.currentPhase = 'ready'
    this.log.info({ pipelines: this.engine.pipelines.map((p) => p.name), workers: this.config.workers }, 'The node is ready.')
    return address
  }

  async stop(): Promise<void> {
    if (this.currentPhase === 'stopped' || this.currentPhase === 'draining') return
    this.currentPhase = 'draining'
    this.log.info('The node is shutting down.')
    await this.http.stop()
    await this.mesh?.stop()
    await this.workers.stop()
    await this.engine.stop()
    await this.queue.close()
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

  /** Does this node, or a peer it knows, run the pipeline? */
  hasPipeline(name: string): boolean {
    return this.engine.has(name) || (this.mesh?.knowsPipeline(name) ?? false)
  }

  async ingest(objects: JsonObject[], options: IngestOptions): Promise<EnqueueResult[]> {
    const started = performance.now()
    const receivedAt = Date.now()
    const key = options.idempotencyKey
    const single = !options.batch
    const events: EventRecord[] = objects.map((data, i) => ({
      id: key === undefined ? uuidv7() : single ? key : `${key}-${i}`,
      ...(options.pipeline === undefined ? {} : { pipeline: options.pipeline }),
      origin: this.nodeId,
      receivedAt,
      hops: 0,
      data,
    }))
    // Traced before admission, so a handoff made while admitting comes after it.
    for (const e of events) this.traces.add(e.id, 'received')
    let results: EnqueueResult[]
    try {
      results = await this.admit(events, options.pipeline, key === undefined)
    } catch (err) {
      for (const e of events) this.traces.add(e.id, 'refused', { detail: asError(err).message })
      throw err
    }
    let duplicates = 0
    for (const r of results) {
      if (!r.duplicate) continue
      duplicates++
      this.traces.add(r.id, 'duplicate')
    }
    this.metricsStore.accepted(results.length - duplicates, duplicates, (performance.now() - started) / 1000)
    return results
  }

  /**
   * Make the events durable here, or on a peer: one that runs the pipeline when this
   * node does not, or one with room when this node is at its hard cap. A 429 comes only
   * when no peer could take them, and names the least-loaded peer to try instead.
   * `newIds`: the ids were made here just now (no Idempotency-Key), so dedupe has
   * nothing to do.
   */
  private async admit(events: EventRecord[], pipeline: string | undefined, newIds: boolean): Promise<EnqueueResult[]> {
    const mesh = this.mesh
    if (mesh && pipeline !== undefined && !this.engine.has(pipeline)) {
      const results = await this.viaPeer(events, 'route', newIds, pipeline)
      if (!results)
        throw new BingeError('BINGE_NOT_READY', `no peer running the pipeline "${pipeline}" could take the events now`, { retryAfter: 1 })
      return results
    }
    try {
      return await this.queue.enqueue(events, { newIds, fingerprint: !newIds })
    } catch (err) {
      if (!mesh || !(err instanceof BingeError) || err.code !== 'BINGE_QUEUE_FULL') throw err
      const results = await this.viaPeer(events, 'overflow', newIds)
      if (results) return results
      const suggestion = mesh.table.fresh().sort((a, b) => mesh.table.loadOf(a) - mesh.table.loadOf(b))[0]
      throw new BingeError('BINGE_QUEUE_FULL', `${err.message}; no peer can take more either`, {
        retryAfter: err.retryAfter ?? 1,
        details: suggestion ? { peer: { node: suggestion.announcement.node, http: suggestion.httpUrl } } : {},
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
    events: EventRecord[],
    kind: 'overflow' | 'route',
    newIds: boolean,
    pipeline?: string,
  ): Promise<EnqueueResult[] | undefined> {
    const seen = newIds ? events.map(() => false) : await this.queue.seen(events.map((e) => e.id))
    const fresh = events.filter((_, i) => !seen[i])
    const duplicates = new Set(events.filter((_, i) => seen[i]).map((e) => e.id))
    if (fresh.length > 0) {
      let done
      try {
        done = await this.mesh!.handOffDirect(fresh, kind, pipeline)
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
      if (!newIds) await this.queue.remember(fresh.map((e) => e.id))
      for (const id of done.duplicateIds) duplicates.add(id)
    }
    return events.map((e) => ({ id: e.id, duplicate: duplicates.has(e.id) }))
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
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
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
