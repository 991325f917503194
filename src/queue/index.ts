// The queue's entry point, and the one the rest of src imports: pick a backend by mode.
// Both extend AbstractQueue (abstract-queue.ts), which owns the EventQueue surface
// (types.ts) and its checks, and pass the same shared test suite; only the durable one
// (durable/, every module that knows LevelDB) survives a crash.

import type { DurableQueueOptions } from './durable/durable-options.js'
import { DurableQueue } from './durable/durable-queue.js'
import { MemoryQueue } from './memory-queue.js'
import type { EventQueue } from './types.js'

export type QueueOptions =
  | ({ mode: 'durable' } & DurableQueueOptions)
  | ({ mode: 'memory' } & Partial<Pick<DurableQueueOptions, 'dir' | 'sync'>> & Omit<DurableQueueOptions, 'dir' | 'sync' | 'onSweepError'>)

export function createQueue(options: QueueOptions): EventQueue {
  if (options.mode === 'memory') return new MemoryQueue(options)
  return new DurableQueue(options)
}

export type { DurableQueueOptions, DurableQueueStats, SyncMode } from './durable/durable-options.js'
export { DurableQueue } from './durable/durable-queue.js'
export { MemoryQueue, type MemoryQueueOptions } from './memory-queue.js'
export type * from './types.js'
