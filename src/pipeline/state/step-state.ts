// One stateful step's state, all of it in memory (loaded from the node's store on first
// use) and written back as put/del operations that commit with the ack of the batch.
// Invariant, held by its pipeline's lock: outside a batch, `entries` equals what the
// store holds under `prefix`. During a batch an undo log allows rolling the batch back
// (its output failed, the ack failed) and a savepoint per event rolls one event back
// (a step threw for it), so a failed event leaves no trace in any step's state.
// Values are replaced, never changed in place: the undo log keeps the old objects.
import type { StateOp } from '../../queue/types.js'

export interface StateSource {
  /** Every committed entry whose key starts with `prefix`. */
  scanState(prefix: string): Promise<Array<{ key: string; value: unknown }>>
}

export class StepState<V> {
  private entries = new Map<string, V>()
  private loaded = false
  /** Keys changed in this batch, with the value each had when the batch began. */
  private readonly batchUndo = new Map<string, V | undefined>()
  /** Keys changed by the current event, with their value before it. */
  private eventUndo: Map<string, V | undefined> | undefined

  constructor(
    /** The step's place in the store: `<pipeline>/<index>.<kind>/`. */
    readonly prefix: string,
    private readonly source: StateSource,
  ) {}

  async load(): Promise<void> {
    if (this.loaded) return
    const rows = await this.source.scanState(this.prefix)
    this.entries = new Map(rows.map((r) => [r.key.slice(this.prefix.length), r.value as V]))
    this.loaded = true
  }

  get(key: string): V | undefined {
    return this.entries.get(key)
  }

  set(key: string, value: V): void {
    this.remember(key)
    this.entries.set(key, value)
  }

  delete(key: string): void {
    if (!this.entries.has(key)) return
    this.remember(key)
    this.entries.delete(key)
  }

  get size(): number {
    return this.entries.size
  }

  /** Every entry; changing the state while iterating is not allowed (collect first). */
  all(): IterableIterator<[string, V]> {
    return this.entries.entries()
  }

  beginEvent(): void {
    this.eventUndo = new Map()
  }

  /** Keep the event's changes, or undo them (the event failed). */
  endEvent(keep: boolean): void {
    const undo = this.eventUndo
    this.eventUndo = undefined
    if (!keep && undo) this.restore(undo)
  }

  /** The batch's changes as store operations (unchanged keys left out). */
  ops(): StateOp[] {
    const ops: StateOp[] = []
    for (const [key, before] of this.batchUndo) {
      const now = this.entries.get(key)
      if (now === before) continue
      ops.push(now === undefined ? { type: 'del', key: this.prefix + key } : { type: 'put', key: this.prefix + key, value: now })
    }
    return ops
  }

  /** The batch's changes are in the store now. */
  commit(): void {
    this.batchUndo.clear()
  }

  /** Undo the whole batch: the state is what the store holds. */
  rollback(): void {
    this.eventUndo = undefined
    this.restore(this.batchUndo)
    this.batchUndo.clear()
  }

  /** Forget everything; the next batch reloads from the store (after a failed ack). */
  invalidate(): void {
    this.entries = new Map()
    this.loaded = false
    this.eventUndo = undefined
    this.batchUndo.clear()
  }

  private remember(key: string): void {
    if (!this.batchUndo.has(key)) this.batchUndo.set(key, this.entries.get(key))
    if (this.eventUndo && !this.eventUndo.has(key)) this.eventUndo.set(key, this.entries.get(key))
  }

  private restore(undo: Map<string, V | undefined>): void {
    for (const [key, value] of undo) {
      if (value === undefined) this.entries.delete(key)
      else this.entries.set(key, value)
    }
  }
}
