// Every write of the durable queue goes through here: one atomic batch, never to a
// faulted store, and one in flight when a fault struck fails too (store-health.ts);
// the writes and fsyncs are counted; and under `sync: batch` or `always` a write made
// without fsync is followed by one within `ackSyncMs` (lazy-sync.ts), which bounds
// what a power cut can undo.
import type { Level } from 'level'
import type { SyncMode } from './durable-options.js'
import { type Op, metaKey } from './keys.js'
import { LazySync } from './lazy-sync.js'
import type { StoreHealth } from './store-health.js'
import { writeBatch } from './write-batch.js'

export interface StoreWriterOptions {
  /** The store as it is now (a reopen makes a new one). */
  db: () => Level<string, string>
  health: StoreHealth
  sync: SyncMode
  /** Default 1 s; 0: leave it to the OS. */
  ackSyncMs?: number
  /** Runs the lazy fsync as the queue's lifecycle allows (not once it closes). */
  run: (write: () => Promise<void>) => Promise<void>
  now: () => number
}

export class StoreWriter {
  /** Batches written, and of them those written with fsync. */
  readonly counts = { writes: 0, syncWrites: 0 }
  private readonly lazySync: LazySync

  constructor(private readonly options: StoreWriterOptions) {
    this.lazySync = new LazySync(options.ackSyncMs ?? 1_000, () =>
      options.run(() => this.write([{ type: 'put', key: metaKey('synced-at'), value: String(options.now()) }], true)),
    )
  }

  async write(ops: Op[], sync: boolean): Promise<void> {
    const { health } = this.options
    health.assertWritable()
    const generation = health.generation
    try {
      await writeBatch(this.options.db(), ops, sync)
    } catch (err) {
      throw health.failed(err)
    }
    if (generation !== health.generation) throw health.refusal()
    this.counts.writes++
    if (sync) {
      this.counts.syncWrites++
      this.lazySync.synced()
    } else if (this.options.sync !== 'none') {
      this.lazySync.unsynced()
    }
  }

  stop(): void {
    this.lazySync.stop()
  }
}
