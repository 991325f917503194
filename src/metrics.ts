// The node's figures, kept once: plain counters for /stats, prom-client metrics for
// /metrics, and recent rates and latencies for the dashboard (docs/design.md §8),
// updated together. Each node owns its own registry so several nodes can run in one
// process (tests) without their metrics colliding. /metrics must pass
// `promtool check metrics`: no gauge may end in _total.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { DiskStatus, QueueDepth } from './queue/types.js'
import { RateWindow } from './util/rate-window.js'
import { RecentSamples } from './util/recent-samples.js'

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

/** Counts of one pipeline or one step since start, and its recent p95 latency, for the dashboard. */
export interface StageFigures {
  /** Events that entered. */
  in: number
  /** Events passed on (a step) or delivered to every output (a pipeline). */
  out: number
  /** Intended drops: a filter, sample, dedupe or throttle kept the event back. Not failures. */
  filtered: number
  failed: number
  /** Of the failed, those onFail dead-lettered. */
  deadlettered: number
  /** p95 of the last 256 runs, in milliseconds; absent before the first. */
  p95Ms?: number
}

export interface StepFigures extends StageFigures {
  index: number
  kind: string
}

export interface PipelineFigures extends StageFigures {
  name: string
  /** Of the failed, those onFail dropped, forwarded or alerted on. */
  otherwiseHandled: number
  steps: StepFigures[]
}

/** Events per second handed to and taken from one peer, over the last minute. */
export interface PeerHandoffRates {
  /** The peer's node name. */
  peer: string
  out: number
  in: number
  /** Since start. */
  outTotal: number
  inTotal: number
}

export interface DashboardFigures {
  /** Events per second over the last 10 s: accepted, finished by the pipelines, handed off, handed in. */
  rates: { in: number; finished: number; handedOff: number; handedIn: number }
  handoffs: PeerHandoffRates[]
  pipelines: PipelineFigures[]
}

/** The most peers whose handoff rates are kept (a mesh is bounded; this only caps memory). */
const maxHandoffPeers = 1_000

class Stage {
  in = 0
  out = 0
  filtered = 0
  failed = 0
  deadlettered = 0
  otherwise = 0
  readonly latency = new RecentSamples()

  figures(): StageFigures {
    const p95 = this.latency.quantile(0.95)
    return {
      in: this.in,
      out: this.out,
      filtered: this.filtered,
      failed: this.failed,
      deadlettered: this.deadlettered,
      ...(p95 === undefined ? {} : { p95Ms: Math.round(p95 * 1e6) / 1e3 }),
    }
  }
}

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
  private readonly rates = { in: new RateWindow(), finished: new RateWindow(), handedOff: new RateWindow(), handedIn: new RateWindow() }
  private readonly peerHandoffs = new Map<string, { out: RateWindow; in: RateWindow }>()
  private readonly stages = new Map<string, { pipeline: Stage; steps: Array<{ kind: string; stage: Stage }> }>()
  /** Connected mesh peers; set by the mesh when it runs. */
  peerCount: () => number = () => 0

  constructor(nodeId: string, depth: () => QueueDepth, options: { defaultMetrics?: boolean; disk?: () => DiskStatus | undefined } = {}) {
    const registers = [this.registry]
    this.registry.setDefaultLabels({ node: nodeId })
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'binge_process_' })
      // prom-client makes these gauges with a _total suffix, which Prometheus keeps for
      // counters (promtool refuses them). Each is the sum of its labelled sibling
      // (binge_process_nodejs_active_handles{type}, ...), so nothing is lost.
      for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
        this.registry.removeSingleMetric(`binge_process_nodejs_${name}`)
      }
    }
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
    this.rates.in.add(count)
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
    this.rates.finished.add(1)
    const stage = this.stagesOf(pipeline).pipeline
    stage.in++
    if (outcome === 'processed') stage.out++
    else stage[outcome]++
    stage.latency.add(seconds)
  }

  /** `peer`: the node name on the other side, for the dashboard's per-link rates. */
  handoff(direction: HandoffDirection, count: number, peer?: string): void {
    if (direction === 'out') this.counters.handedOff += count
    else if (direction === 'in') this.counters.handedIn += count
    else this.counters.takenBack += count
    this.handoffs.inc({ direction }, count)
    if (direction === 'takenBack') return
    this.rates[direction === 'out' ? 'handedOff' : 'handedIn'].add(count)
    if (peer === undefined) return
    let rates = this.peerHandoffs.get(peer)
    if (!rates) {
      if (this.peerHandoffs.size >= maxHandoffPeers) return
      rates = { out: new RateWindow(), in: new RateWindow() }
      this.peerHandoffs.set(peer, rates)
    }
    rates[direction].add(count)
  }

  private stagesOf(pipeline: string): { pipeline: Stage; steps: Array<{ kind: string; stage: Stage }> } {
    let stages = this.stages.get(pipeline)
    if (!stages) {
      stages = { pipeline: new Stage(), steps: [] }
      this.stages.set(pipeline, stages)
    }
    return stages
  }

  /** What the dashboard shows of this node's work; `pipelines` are listed even before their first event. */
  figures(pipelines: string[] = []): DashboardFigures {
    for (const name of pipelines) this.stagesOf(name)
    const round = (n: number) => Math.round(n * 100) / 100
    const r = this.rates
    return {
      rates: {
        in: round(r.in.rate(10)),
        finished: round(r.finished.rate(10)),
        handedOff: round(r.handedOff.rate(10)),
        handedIn: round(r.handedIn.rate(10)),
      },
      handoffs: [...this.peerHandoffs].map(([peer, rates]) => ({
        peer,
        out: round(rates.out.rate(60)),
        in: round(rates.in.rate(60)),
        outTotal: rates.out.total,
        inTotal: rates.in.total,
      })),
      pipelines: [...this.stages].map(([name, s]) => ({
        name,
        ...s.pipeline.figures(),
        // Counted as they finish, except that an event inside its first step has entered too.
        in: Math.max(s.pipeline.in, s.steps[0]?.stage.in ?? 0),
        otherwiseHandled: s.pipeline.otherwise,
        steps: s.steps.map((step, index) => ({ index, kind: step.kind, ...step.stage.figures() })),
      })),
    }
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
    const steps = this.stagesOf(pipeline).steps
    const stage = new Stage()
    steps[index] = { kind, stage }
    return {
      done(outcome, seconds) {
        outcomes[outcome].inc()
        latency.observe(seconds)
        stage.in++
        if (outcome === 'processed') stage.out++
        else stage[outcome]++
        stage.latency.add(seconds)
      },
      failureHandled(action) {
        failures.inc({ ...labels, action })
        if (action === 'deadletter') stage.deadlettered++
        else stage.otherwise++
      },
    }
  }

  failureHandled(pipeline: string, action: FailureAction): void {
    if (action === 'deadletter') this.counters.deadlettered++
    if (action === 'drop') this.counters.dropped++
    this.failures.inc({ pipeline, action })
    const stage = this.stagesOf(pipeline).pipeline
    if (action === 'deadletter') stage.deadlettered++
    else stage.otherwise++
  }
}
