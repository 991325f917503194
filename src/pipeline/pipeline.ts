// One configured pipeline: `when` selects events, steps transform them, outputs deliver
// them, and onFail decides what happens to an event that failed for good. A run never
// throws for an event's own failure: it returns what happened, so the worker can ack
// the event with its dead letter and state in one batch. It throws only when aborted
// (shutdown), and then the worker returns the event to the queue.
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { DeadLetterInput, EventRecord, StateOp } from '../queue/types.js'
import type { TraceStore } from '../trace.js'
import { abortableSleep, backoffDelay } from '../util/backoff.js'
import { compile, isTruthy, type Expression } from './expression.js'
import { deliverFailure, type FailurePolicy } from './on-fail.js'
import { OutputFailure } from './outputs/http.js'
import { buildOutput, buildStep, type OutputEntry } from './registry.js'
import type { Envelope, PipelineEvent, Step } from './types.js'

export interface PipelineSpec {
  name: string
  when?: string
  steps: object[]
  outputs: object[]
  onFail: FailurePolicy
}

export interface PipelineDeps {
  nodeId: string
  log: Logger
  metrics: Metrics
  trace: TraceStore
}

export type PipelineResult =
  | { status: 'skipped' }
  | { status: 'processed' | 'filtered'; state: StateOp[] }
  | { status: 'failed'; state: StateOp[]; deadletter?: DeadLetterInput }

export class Pipeline {
  readonly name: string
  private readonly when?: Expression
  private readonly steps: Step[]
  private readonly outputs: OutputEntry[]

  constructor(private readonly spec: PipelineSpec, private readonly deps: PipelineDeps) {
    this.name = spec.name
    this.when = spec.when === undefined ? undefined : compile(spec.when)
    this.steps = spec.steps.map(buildStep)
    this.outputs = spec.outputs.map(buildOutput)
  }

  async start(): Promise<void> {
    for (const o of this.outputs) await o.output.start?.()
  }

  async stop(): Promise<void> {
    for (const o of this.outputs) await o.output.stop?.()
  }

  /** Does this event enter the pipeline? A `when` that throws counts as no, and is logged. */
  async accepts(event: EventRecord): Promise<boolean> {
    if (event.pipeline !== undefined) return event.pipeline === this.name
    if (!this.when) return true
    try {
      return isTruthy(await this.when.evaluate(event.data))
    } catch (err) {
      this.deps.log.warn({ pipeline: this.name, id: event.id, err: asError(err).message }, 'The when expression failed, so the event skips this pipeline.')
      return false
    }
  }

  /**
   * Run a batch of events that all entered this pipeline; one result per event, in
   * order. Steps run per event; each output gets one write for the whole batch (one
   * fsync, one POST), which is what makes a busy node fast.
   */
  async runBatch(batch: EventRecord[], signal: AbortSignal): Promise<PipelineResult[]> {
    const started = performance.now()
    const results: PipelineResult[] = new Array(batch.length)
    const pending: Array<{ index: number; events: PipelineEvent[]; state: StateOp[] }> = []
    for (const [index, event] of batch.entries()) {
      const state: StateOp[] = []
      let events: PipelineEvent[]
      try {
        events = await this.transform(event, state)
      } catch (err) {
        results[index] = await this.fail(event, asError(err), 1, started, state, signal)
        continue
      }
      if (events.length === 0) {
        this.deps.metrics.pipelineDone(this.name, 'filtered', (performance.now() - started) / 1000)
        this.deps.trace.add(event.id, 'filtered', { pipeline: this.name })
        results[index] = { status: 'filtered', state }
        continue
      }
      pending.push({ index, events, state })
    }
    if (pending.length === 0) return results
    const failure = await this.deliver(pending.flatMap((p) => p.events), signal)
    if (!failure) {
      for (const p of pending) results[p.index] = this.done(batch[p.index]!, p.state, started)
      return results
    }
    // A payload the endpoint refuses for good may be one bad event among good ones:
    // deliver them one by one so only the bad ones fail. A transient failure that
    // outlived its retries (the endpoint is down) fails them all without more waiting.
    const permanent = failure.error instanceof OutputFailure && failure.error.permanent
    for (const p of pending) {
      const own = permanent && pending.length > 1 ? await this.deliver(p.events, signal) : failure
      results[p.index] = own ? await this.fail(batch[p.index]!, own.error, own.attempts, started, p.state, signal) : this.done(batch[p.index]!, p.state, started)
    }
    return results
  }

  private done(event: EventRecord, state: StateOp[], started: number): PipelineResult {
    this.deps.metrics.pipelineDone(this.name, 'processed', (performance.now() - started) / 1000)
    this.deps.trace.add(event.id, 'processed', { pipeline: this.name })
    return { status: 'processed', state }
  }

  private async transform(event: EventRecord, state: StateOp[]): Promise<PipelineEvent[]> {
    let events: PipelineEvent[] = [{ source: event, data: event.data }]
    for (const step of this.steps) {
      const next: PipelineEvent[] = []
      for (const e of events) next.push(...(await step.process(e, { state })))
      events = next
      if (events.length === 0) break
    }
    return events
  }

  /** Write to every output, retrying each on its own so one that succeeded is not written twice. */
  private async deliver(events: PipelineEvent[], signal: AbortSignal): Promise<{ error: Error; attempts: number } | undefined> {
    const retry = this.spec.onFail.retry
    const maxAttempts = Math.max(1, retry?.attempts ?? 1)
    for (const entry of this.outputs) {
      const records = events.map((e) => (entry.envelope ? this.envelope(e) : e.data))
      for (let attempt = 1; ; attempt++) {
        try {
          await entry.output.write(records, { signal })
          break
        } catch (err) {
          signal.throwIfAborted()
          const permanent = err instanceof OutputFailure && err.permanent
          if (permanent || attempt >= maxAttempts) return { error: asError(err), attempts: attempt }
          this.deps.log.warn({ pipeline: this.name, output: entry.output.kind, attempt, err: asError(err).message }, 'An output failed and will be retried.')
          await abortableSleep(backoffDelay(attempt, retry?.backoff ?? 200, retry?.maxBackoff ?? 30_000), signal)
        }
      }
    }
    return undefined
  }

  private envelope(e: PipelineEvent): Envelope {
    const s = e.source
    return { id: s.id, pipeline: this.name, node: this.deps.nodeId, origin: s.origin, receivedAt: new Date(s.receivedAt).toISOString(), data: e.data }
  }

  private async fail(event: EventRecord, error: Error, attempts: number, started: number, state: StateOp[], signal: AbortSignal): Promise<PipelineResult> {
    signal.throwIfAborted()
    this.deps.metrics.pipelineDone(this.name, 'failed', (performance.now() - started) / 1000)
    const action = await deliverFailure(this.spec.onFail, { pipeline: this.name, nodeId: this.deps.nodeId, event, error, attempts }, this.deps.log)
    this.deps.metrics.failureHandled(this.name, action)
    this.deps.trace.add(event.id, action === 'deadletter' ? 'deadlettered' : `failed:${action}`, { pipeline: this.name, detail: error.message })
    if (action === 'deadletter') return { status: 'failed', state, deadletter: { pipeline: this.name, error: error.message, attempts } }
    return { status: 'failed', state }
  }
}
