// The durable queue's options and figures, apart from the queue itself so that the
// node and benchmarks can name them without reading its design.
import type { DiskState, MinFreeDisk } from './disk-space.js'

export type SyncMode = 'batch' | 'always' | 'none'

export interface DurableQueueOptions {
  dir: string
  sync: SyncMode
  maxEvents: number
  maxBytes: number
  dedupeWindowMs: number
  /** Clock for dedupe and dead-letter times; tests inject one. */
  now?: () => number
  /** Called when the background dedupe sweep fails (it retries on its next tick). */
  onSweepError?: (err: unknown) => void
  /**
   * Longest time an unsynced move or ack stays off the disk's stable storage (lazy-sync.ts):
   * bounds the re-processing a power cut can cause. Default 1 s; 0: leave it to the OS.
   */
  ackSyncMs?: number
  /** Free space kept on the data volume (default: see disk-space.ts). */
  minFreeDisk?: MinFreeDisk
  /** The volume went below the watermark or back above it. */
  onDiskChange?: (state: DiskState) => void
  /** A write failed for want of space: the store refuses writes until it has reopened. */
  onStoreFault?: (err: Error) => void
  onStoreHealed?: (attempts: number, ms: number) => void
  /** A reopen after a fault failed (it is tried again shortly). */
  onStoreHealRetry?: (err: unknown, attempt: number) => void
}

export interface DurableQueueStats {
  /** Batches written by enqueue groups. */
  enqueueWrites: number
  /** Enqueue calls that reached the group commit. */
  enqueueCalls: number
  /** Every batch written, of any kind. */
  writes: number
  /** Batches written with fsync. */
  syncWrites: number
}
