// The node's figures, kept once: plain counters for /stats and prom-client metrics for
// /metrics, updated together. Each node owns its own registry so several nodes can run
// in one process (tests) without their metrics colliding.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { DiskStatus, QueueDepth } from './queue/types.js'

export interface StatsCounters {
  received: number
  duplicates: number
  processed: number
  filtered: number
  failed: number
  deadlettered: number
  dropped: number
  handedOff: number
  handedIn: number
  /** Events taken back from a peer that stayed unreachable (possible duplicates). */
  takenBack: number
  rejected: number
}

export type HandoffDirection = 'out' | 'in' | 'takenBack'

export type PipelineOutcome = 'processed' | 'filtered' | 'failed'
export type FailureAction = 'deadletter' | 'drop' | 'forward' | 'alert'
export type StepOutcome = 'processed' | 'filtered' | 'failed'

/** One step's figures, its labels bound once (a step runs per event: no label hashing then). */
export interface StepMeter {
  done(outcome: StepOutcome, seconds: number): void
  /** An event this step failed was handled by onFail with `action`. */
  failureHandled(action: FailureAction): void
}

export class Metrics {
  readonly registry = new Registry()
  readonly counters: StatsCounters = {
    received: 0,
    duplicates: 0,
    processed: 0,
    filtered: 0,
    failed: 0,
    deadlettered: 0,
    dropped: 0,
    handedOff: 0,
    handedIn: 0,
    takenBack: 0,
    rejected: 0,
  }

  private readonly received: Counter
  private readonly duplicates: Counter
  private readonly rejected: Counter<'reason'>
  private readonly pipelineEvents: Counter<'pipeline' | 'outcome'>
  private readonly failures: Counter<'pipeline' | 'action'>
  private readonly ingestLatency: Histogram
  private readonly pipelineLatency: Histogram<'pipeline'>
  private readonly handoffs: Counter<'direction'>
  private readonly stepEvents: Counter<'pipeline' | 'step' | 'kind' | 'outcome'>
  private readonly stepFailures: Counter<'pipeline' | 'step' | 'kind' | 'action'>
  private readonly stepLatency: Histogram<'pipeline' | 'step' | 'kind'>
  /** Connected mesh peers; set by the mesh when it runs. */
  peerCount: () => number = () => 0

  constructor(nodeId: string, depth: () => QueueDepth, options: { defaultMetrics?: boolean; disk?: () => DiskStatus | undefined } = {}) {
    const registers = [this.registry]
    this.registry.setDefaultLabels({ node: nodeId })
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'binge_process_' })
    this.received = new Counter({ name: 'binge_events_received_total', help: 'Events accepted and made durable.', registers })
    this.duplicates = new Counter({
      name: 'binge_events_duplicate_total',
      help: 'Events answered as duplicates and not queued again.',
      registers,
    })
    this.rejected = new Counter({
      name: 'binge_requests_rejected_total',
      help: 'Ingest requests refused, by reason.',
      labelNames: ['reason'],
      registers,
    })
    this.pipelineEvents = new Counter({
      name: 'binge_pipeline_events_total',
      help: 'Events that left a pipeline, by outcome.',
      labelNames: ['pipeline', 'outcome'],
      registers,
    })
    this.failures = new Counter({
      name: 'binge_pipeline_failures_total',
      help: 'Failed events by the onFail action taken.',
      labelNames: ['pipeline', 'action'],
      registers,
    })
    this.ingestLatency = new Histogram({
      name: 'binge_ingest_duration_seconds',
      help: 'Time from request to durable answer.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    })
    this.pipelineLatency = new Histogram({
      name: 'binge_pipeline_duration_seconds',
      help: 'Time one event spends in a pipeline, outputs included.',
      labelNames: ['pipeline'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    })
    new Gauge({
      name: 'binge_queue_events',
      help: 'Events in each queue bucket.',
      labelNames: ['bucket'],
      registers,
      collect() {
        const d = depth()
        this.set({ bucket: 'unprocessed' }, d.unprocessed)
        this.set({ bucket: 'inflight' }, d.inflight)
        this.set({ bucket: 'deadletter' }, d.deadletter)
        this.set({ bucket: 'handingOff' }, d.handingOff)
      },
    })
    this.handoffs = new Counter({
      name: 'binge_handoff_events_total',
      help: 'Events moved between nodes, by direction (out, in, takenBack).',
      labelNames: ['direction'],
      registers,
    })
    this.stepEvents = new Counter({
      name: 'binge_step_events_total',
      help: 'Events a step took, by outcome (processed: it passed one or more on).',
      labelNames: ['pipeline', 'step', 'kind', 'outcome'],
      registers,
    })
    this.stepFailures = new Counter({
      name: 'binge_step_failures_total',
      help: 'Events a step failed, by the onFail action taken (deadletter, drop, ...).',
      labelNames: ['pipeline', 'step', 'kind', 'action'],
      registers,
    })
    this.stepLatency = new Histogram({
      name: 'binge_step_duration_seconds',
      help: 'Time one step spends on one event.',
      labelNames: ['pipeline', 'step', 'kind'],
      buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.1, 1],
      registers,
    })
    const metrics = this
    new Gauge({
      name: 'binge_mesh_peers',
      help: 'Connected mesh peers.',
      registers,
      collect() {
        this.set(metrics.peerCount())
      },
    })
    new Gauge({
      name: 'binge_queue_bytes',
      help: 'Bytes of unprocessed and in-flight events.',
      registers,
      collect() {
        this.set(depth().bytes)
      },
    })
    const disk = options.disk ?? (() => undefined)
    if (disk() !== undefined) {
      new Gauge({
        name: 'binge_disk_free_bytes',
        help: 'Free bytes on the data volume (estimated between readings).',
        registers,
        collect() {
          this.set(disk()?.freeBytes ?? 0)
        },
      })
      new Gauge({
        name: 'binge_disk_min_free_bytes',
        help: 'queue.minFreeDisk in bytes on the data volume.',
        registers,
        collect() {
          this.set(disk()?.minFreeBytes ?? 0)
        },
      })
      new Gauge({
        name: 'binge_disk_below_watermark',
        help: '1 while the data volume is below queue.minFreeDisk (new events refused).',
        registers,
        collect() {
          this.set(disk()?.belowWatermark ? 1 : 0)
        },
      })
      new Gauge({
        name: 'binge_store_faulted',
        help: '1 while a write failed for want of space and the store has not reopened yet (503).',
        registers,
        collect() {
          this.set(disk()?.storeFaulted ? 1 : 0)
        },
      })
    }
  }

  accepted(count: number, duplicates: number, seconds: number): void {
    this.counters.received += count
    this.counters.duplicates += duplicates
    this.received.inc(count)
    if (duplicates > 0) this.duplicates.inc(duplicates)
    this.ingestLatency.observe(seconds)
  }

  rejectedRequest(reason: string): void {
    this.counters.rejected++
    this.rejected.inc({ reason })
  }

  pipelineDone(pipeline: string, outcome: PipelineOutcome, seconds: number): void {
    this.counters[outcome]++
    this.pipelineEvents.inc({ pipeline, outcome })
    this.pipelineLatency.observe({ pipeline }, seconds)
  }

  handoff(direction: HandoffDirection, count: number): void {
    if (direction === 'out') this.counters.handedOff += count
    else if (direction === 'in') this.counters.handedIn += count
    else this.counters.takenBack += count
    this.handoffs.inc({ direction }, count)
  }

  /** The figures of step number `index` (0-based) of a pipeline, labelled `step="<index>"` and its kind. */
  step(pipeline: string, index: number, kind: string): StepMeter {
    const labels = { pipeline, step: String(index), kind }
    const outcomes = {
      processed: this.stepEvents.labels({ ...labels, outcome: 'processed' }),
      filtered: this.stepEvents.labels({ ...labels, outcome: 'filtered' }),
      failed: this.stepEvents.labels({ ...labels, outcome: 'failed' }),
    }
    const latency = this.stepLatency.labels(labels)
    const failures = this.stepFailures
    return {
      done(outcome, seconds) {
        outcomes[outcome].inc()
        latency.observe(seconds)
      },
      failureHandled(action) {
        failures.inc({ ...labels, action })
      },
    }
  }

  failureHandled(pipeline: string, action: FailureAction): void {
    if (action === 'deadletter') this.counters.deadlettered++
    if (action === 'drop') this.counters.dropped++
    this.failures.inc({ pipeline, action })
  }
}
