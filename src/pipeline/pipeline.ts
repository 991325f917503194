// One configured pipeline: `when` selects events, steps transform them, outputs deliver
// them, and onFail decides what happens to an event that failed for good. A run never
// throws for an event's own failure: it returns what happened, so the worker can ack
// the event with its dead letter and state in one batch. It throws only when aborted
// (shutdown), and then the worker returns the event to the queue.
//
// Stateful steps: the caller holds the pipeline's lock (state.lock) around runBatch and
// flush and until their state is committed or dropped (engine.ts). A failed event
// leaves no trace in the state (its changes are undone); when an output fails, every
// event of the batch fails and the batch's state changes are undone together, since
// one write carried them all and each event's changes build on the ones before. So the
// committed state is the effect of exactly the events that finished.
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import type { Metrics, StepMeter } from '../metrics.js'
import type { DeadLetterInput, EventRecord, StateOp } from '../queue/types.js'
import type { TraceStore } from '../trace.js'
import { abortableSleep, backoffDelay } from '../util/backoff.js'
import { startAll, stopAll, type Startable } from '../util/startable.js'
import { bindingsOf, compile, isTruthy, type Expression } from './expression.js'
import { deliverFailure, type FailurePolicy } from './on-fail.js'
import { OutputFailure } from './outputs/http.js'
import { buildOutputs, buildSteps, type BuiltOutput, type OutputWrapper } from './registry.js'
import { PipelineState } from './state/pipeline-state.js'
import type { StateSource } from './state/step-state.js'
import type { Envelope, FlushRun, PipelineEvent, Step } from './types.js'

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
  /** Hands events to a mesh peer (the `forward` output); absent: the node runs alone. */
  forward?: (pipeline: string, events: EventRecord[]) => Promise<void>
  /** Wraps each output as it is built (`binge run` taps them). */
  wrapOutput?: OutputWrapper
  /** Where stateful steps load their state from (the node's queue); absent: they start empty (`binge run`). */
  state?: StateSource
}

const noState: StateSource = { scanState: async () => [] }

/** What a flush did: results delivered (their state changes are to be committed), or a failure (undone). */
export interface FlushResult {
  emitted: number
  failure?: Error
  /** State changes later steps recorded in their run (StepRun.state) while passing the results on. */
  ops: StateOp[]
}

/** Which step failed an event, so its figures count what onFail did with it. */
const failedStep = new WeakMap<Error, StepMeter>()

export type PipelineResult =
  | { status: 'skipped' }
  | { status: 'processed' | 'filtered'; state: StateOp[] }
  | { status: 'failed'; state: StateOp[]; deadletter?: DeadLetterInput }

export class Pipeline {
  readonly name: string
  private readonly when?: Expression
  private readonly steps: Step[]
  private readonly outputs: BuiltOutput[]
  private readonly stepMeters: StepMeter[]
  /** The stateful steps' state and lock; undefined when the pipeline has none. */
  readonly state?: PipelineState
  /** Shared by every trace step of this pipeline (the trace keeps it as is). */
  private readonly traceStep: { pipeline: string }

  constructor(
    private readonly spec: PipelineSpec,
    private readonly deps: PipelineDeps,
  ) {
    this.name = spec.name
    this.traceStep = { pipeline: spec.name }
    this.when = spec.when === undefined ? undefined : compile(spec.when)
    const state = new PipelineState(spec.name, deps.state ?? noState)
    const openState = <V>(index: number, kind: string) => state.open<V>(index, kind)
    const context = {
      pipeline: spec.name,
      nodeId: deps.nodeId,
      forward: deps.forward,
      wrapOutput: deps.wrapOutput,
      openState,
    }
    this.steps = buildSteps(spec.steps, context)
    if (!state.empty) this.state = state
    this.outputs = buildOutputs(spec.outputs, context)
    this.stepMeters = this.steps.map((step, index) => deps.metrics.step(spec.name, index, step.kind))
  }

  async start(): Promise<void> {
    await startAll(this.outputParts())
  }

  async stop(): Promise<void> {
    await stopAll(this.outputParts(), (err) =>
      this.deps.log.error({ pipeline: this.name, err: asError(err).message }, 'An output failed to close.'),
    )
  }

  private outputParts(): Startable[] {
    return this.outputs.map(({ output }) => ({ start: () => output.start?.(), stop: () => output.stop?.() }))
  }

  /** Does this event enter the pipeline? A `when` that throws counts as no, and is logged. */
  async accepts(event: EventRecord): Promise<boolean> {
    if (event.pipeline !== undefined) return event.pipeline === this.name
    if (!this.when) return true
    try {
      return isTruthy(await this.when.evaluate(event.data, bindingsOf(event)))
    } catch (err) {
      this.deps.log.warn(
        { pipeline: this.name, id: event.id, err: asError(err).message },
        'The when expression failed, so the event skips this pipeline.',
      )
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
    const state = this.state
    await state?.load()
    const results: PipelineResult[] = new Array(batch.length)
    const filtered: Array<{ index: number; state: StateOp[] }> = []
    const pending: Array<{ index: number; events: PipelineEvent[]; state: StateOp[] }> = []
    for (const [index, event] of batch.entries()) {
      const ops: StateOp[] = []
      let events: PipelineEvent[]
      state?.beginEvent()
      try {
        events = await this.transform(event, ops, signal)
      } catch (err) {
        // A failed event leaves no state behind: neither its steps' nor its ops.
        state?.endEvent(false)
        results[index] = await this.fail(event, asError(err), 1, started, [], signal)
        continue
      }
      state?.endEvent(true)
      if (events.length === 0) filtered.push({ index, state: ops })
      else pending.push({ index, events, state: ops })
    }
    const failure =
      pending.length === 0
        ? undefined
        : await this.deliver(
            pending.flatMap((p) => p.events),
            signal,
          )
    if (failure && state) {
      // One write carried the whole batch and each event's state builds on the ones
      // before: undo them all and fail them all, filtered ones too (a replay redoes them).
      state.rollback()
      this.deps.log.warn(
        { pipeline: this.name, events: pending.length + filtered.length, err: failure.error.message },
        'An output failed, so every event of the batch failed and its state changes were undone.',
      )
      for (const p of [...filtered, ...pending]) {
        results[p.index] = await this.fail(batch[p.index]!, failure.error, failure.attempts, started, [], signal)
      }
      return results
    }
    for (const f of filtered) {
      this.deps.metrics.pipelineDone(this.name, 'filtered', (performance.now() - started) / 1000)
      this.deps.trace.add(batch[f.index]!.id, 'filtered', this.traceStep)
      results[f.index] = { status: 'filtered', state: f.state }
    }
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
      results[p.index] = own
        ? await this.fail(batch[p.index]!, own.error, own.attempts, started, p.state, signal)
        : this.done(batch[p.index]!, p.state, started)
    }
    return results
  }

  /**
   * Close what the stateful steps have due (the caller holds the lock): each step's
   * flush results pass through the steps after it and go to the outputs. On a failure
   * the state is rolled back, so the same results come again at the next flush.
   */
  async flush(run: FlushRun): Promise<FlushResult> {
    const state = this.state
    if (!state) return { emitted: 0, ops: [] }
    await state.load()
    let emitted: PipelineEvent[] = []
    const ops: StateOp[] = []
    try {
      for (const step of this.steps) {
        const passed: PipelineEvent[] = []
        for (const e of emitted) passed.push(...(await step.process(e, { state: ops, signal: run.signal })))
        emitted = passed
        if (step.flush) emitted.push(...(await step.flush(run)))
      }
    } catch (err) {
      state.rollback()
      run.signal?.throwIfAborted()
      const error = asError(err)
      this.deps.log.error(
        { pipeline: this.name, err: error.message },
        'A step failed on window results; they stay and are tried again at the next flush.',
      )
      return { emitted: 0, failure: error, ops: [] }
    }
    if (emitted.length === 0) return { emitted: 0, ops }
    const failure = await this.deliver(emitted, run.signal ?? new AbortController().signal)
    if (failure) {
      state.rollback()
      this.deps.log.error(
        { pipeline: this.name, results: emitted.length, attempts: failure.attempts, err: failure.error.message },
        'Window results could not be delivered; they stay and are tried again at the next flush.',
      )
      return { emitted: 0, failure: failure.error, ops: [] }
    }
    return { emitted: emitted.length, ops }
  }

  /** Some stateful step has something due now (checked after a batch, to flush without waiting for the timer). */
  due(): boolean {
    return this.steps.some((s) => s.due?.() ?? false)
  }

  /** The shortest interval any step wants its flush at, if any step has one. */
  flushEveryMs(): number | undefined {
    const wanted = this.steps.flatMap((s) => (s.flush && s.flushEveryMs !== undefined ? [s.flushEveryMs] : []))
    return wanted.length === 0 ? undefined : Math.min(...wanted)
  }

  private done(event: EventRecord, state: StateOp[], started: number): PipelineResult {
    this.deps.metrics.pipelineDone(this.name, 'processed', (performance.now() - started) / 1000)
    this.deps.trace.add(event.id, 'processed', this.traceStep)
    return { status: 'processed', state }
  }

  private async transform(event: EventRecord, state: StateOp[], signal: AbortSignal): Promise<PipelineEvent[]> {
    let events: PipelineEvent[] = [{ source: event, data: event.data }]
    for (const [index, step] of this.steps.entries()) {
      const meter = this.stepMeters[index]!
      const next: PipelineEvent[] = []
      for (const e of events) {
        const stepStarted = performance.now()
        let out: PipelineEvent[]
        try {
          out = await step.process(e, { state, signal })
        } catch (err) {
          meter.done('failed', (performance.now() - stepStarted) / 1000)
          const error = asError(err)
          failedStep.set(error, meter)
          throw error
        }
        meter.done(out.length === 0 ? 'filtered' : 'processed', (performance.now() - stepStarted) / 1000)
        next.push(...out)
      }
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
          this.deps.log.warn(
            { pipeline: this.name, output: entry.output.kind, attempt, err: asError(err).message },
            'An output failed and will be retried.',
          )
          await abortableSleep(backoffDelay(attempt, retry?.backoff ?? 200, retry?.maxBackoff ?? 30_000), signal)
        }
      }
    }
    return undefined
  }

  private envelope(e: PipelineEvent): Envelope {
    const s = e.source
    return {
      id: s.id,
      pipeline: this.name,
      node: this.deps.nodeId,
      origin: s.origin,
      receivedAt: new Date(s.receivedAt).toISOString(),
      ...(s.meta === undefined ? {} : { meta: s.meta }),
      data: e.data,
    }
  }

  private async fail(
    event: EventRecord,
    error: Error,
    attempts: number,
    started: number,
    state: StateOp[],
    signal: AbortSignal,
  ): Promise<PipelineResult> {
    signal.throwIfAborted()
    this.deps.metrics.pipelineDone(this.name, 'failed', (performance.now() - started) / 1000)
    const action = await deliverFailure(
      this.spec.onFail,
      { pipeline: this.name, nodeId: this.deps.nodeId, event, error, attempts },
      this.deps.log,
    )
    this.deps.metrics.failureHandled(this.name, action)
    failedStep.get(error)?.failureHandled(action)
    this.deps.trace.add(event.id, action === 'deadletter' ? 'deadlettered' : `failed:${action}`, {
      pipeline: this.name,
      detail: error.message,
    })
    if (action === 'deadletter') return { status: 'failed', state, deadletter: { pipeline: this.name, error: error.message, attempts } }
    return { status: 'failed', state }
  }
}
