// The queue's entry point: pick a backend by mode. Both fulfil EventQueue (types.ts)
// and pass the same shared test suite; only the durable one survives a crash.

import { DurableQueue, type DurableQueueOptions } from './durable-queue.js'
import { MemoryQueue } from './memory-queue.js'
import type { EventQueue } from './types.js'

export type QueueOptions =
  | ({ mode: 'durable' } & DurableQueueOptions)
  | ({ mode: 'memory' } & Partial<Pick<DurableQueueOptions, 'dir' | 'sync'>> & Omit<DurableQueueOptions, 'dir' | 'sync' | 'onSweepError'>)

export function createQueue(options: QueueOptions): EventQueue {
  if (options.mode === 'memory') return new MemoryQueue(options)
  return new DurableQueue(options)
}

export { DurableQueue, type DurableQueueOptions, type DurableQueueStats, type SyncMode } from './durable-queue.js'
export { MemoryQueue, type MemoryQueueOptions } from './memory-queue.js'
export type * from './types.js'
