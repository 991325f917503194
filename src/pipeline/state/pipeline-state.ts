// The state of one pipeline's stateful steps and the lock that guards it. Whoever holds
// the lock (a worker's batch, a flush) changes the steps' states in memory; the changes
// become store operations that commit in the same write as the batch's acks, and then
// `commit()`, or are dropped (`invalidate()`, the next holder reloads what the store
// holds). So the committed state is always the effect of exactly the acked events.
import type { StateOp } from '../../queue/types.js'
import { Lock } from './lock.js'
import { StepState, type StateSource } from './step-state.js'

export class PipelineState {
  readonly lock = new Lock()
  private readonly steps: Array<StepState<unknown>> = []

  constructor(
    readonly pipeline: string,
    private readonly source: StateSource,
  ) {}

  /** A step's own state; its keys live under `<pipeline>/<index>.<kind>/`. */
  open<V>(index: number, kind: string): StepState<V> {
    const state = new StepState<V>(`${this.pipeline}/${index}.${kind}/`, this.source)
    this.steps.push(state as StepState<unknown>)
    return state
  }

  get empty(): boolean {
    return this.steps.length === 0
  }

  async load(): Promise<void> {
    for (const s of this.steps) await s.load()
  }

  beginEvent(): void {
    for (const s of this.steps) s.beginEvent()
  }

  endEvent(keep: boolean): void {
    for (const s of this.steps) s.endEvent(keep)
  }

  ops(): StateOp[] {
    return this.steps.flatMap((s) => s.ops())
  }

  commit(): void {
    for (const s of this.steps) s.commit()
  }

  rollback(): void {
    for (const s of this.steps) s.rollback()
  }

  invalidate(): void {
    for (const s of this.steps) s.invalidate()
  }
}
