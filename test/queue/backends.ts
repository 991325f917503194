// The backends the shared queue suite runs against. A "place" is where a queue keeps
// its data: a temp dir for the durable queue, nothing for the memory queue. Opening a
// new queue over the same place is how tests restart (and, for memory, lose) a queue.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { DurableQueue, MemoryQueue, type SyncMode } from '../../src/queue/index.js'
import type { EventQueue, EventRecord } from '../../src/queue/types.js'

export interface QueueSettings {
  maxEvents: number
  maxBytes: number
  dedupeWindowMs: number
  now: () => number
  sync: SyncMode
}

export type TestQueue = EventQueue & { sweepDedupe(): Promise<number> }

export interface Place {
  /** A new queue over this place, opened (the previous one closed or abandoned). */
  open(settings?: Partial<QueueSettings>): Promise<TestQueue>
  /** Close whatever is still open and remove the place. */
  dispose(): Promise<void>
}

export interface Backend {
  name: 'durable' | 'memory'
  /** Whether a restart keeps what the queue held (durable) or loses it (memory). */
  survivesRestart: boolean
  place(): Place
}

const defaults: QueueSettings = {
  maxEvents: 1_000_000,
  maxBytes: 1 << 30,
  dedupeWindowMs: 600_000,
  now: Date.now,
  sync: 'batch',
}

function makePlace(build: (settings: QueueSettings) => TestQueue, cleanup: () => void): Place {
  const opened: TestQueue[] = []
  return {
    async open(settings = {}) {
      const queue = build({ ...defaults, ...settings })
      opened.push(queue)
      await queue.open()
      return queue
    },
    async dispose() {
      for (const queue of opened) await queue.close()
      cleanup()
    },
  }
}

export const durable: Backend = {
  name: 'durable',
  survivesRestart: true,
  place() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binge-queue-'))
    return makePlace(
      (s) => new DurableQueue({ dir, ...s }),
      () => fs.rmSync(dir, { recursive: true, force: true }),
    )
  },
}

export const memory: Backend = {
  name: 'memory',
  survivesRestart: false,
  place: () =>
    makePlace(
      (s) => new MemoryQueue(s),
      () => undefined,
    ),
}

export const backends: Backend[] = [durable, memory]

let counter = 0
/** A small event; `size` pads its data to about that many bytes of JSON. */
export function event(id: string, extra: Partial<EventRecord> = {}, size = 0): EventRecord {
  counter++
  const data: Record<string, unknown> = { n: counter }
  if (size > 0) data.pad = 'x'.repeat(size)
  return { id, origin: 'node-test', receivedAt: 1_700_000_000_000 + counter, hops: 0, data, ...extra }
}

/** The bytes one event counts against maxBytes (its JSON, `key` excluded). */
export function bytesOf(e: EventRecord): number {
  const { id, pipeline, origin, receivedAt, hops, data } = e
  return Buffer.byteLength(
    JSON.stringify(pipeline === undefined ? { id, origin, receivedAt, hops, data } : { id, origin, receivedAt, hops, data, pipeline }),
  )
}
