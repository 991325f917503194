// Background expiry of the durable dedupe index. Entries older than the window are
// found by a range over the time-ordered keys (never a scan of the whole index) and
// deleted a chunk at a time. Invariants: the sweep only ever removes an id's entry if
// it still holds the time being expired (the id may have been accepted again since);
// a late sweep is harmless because lookups ignore entries older than the window.

import type { Level } from 'level'
import { type Op, parseSeen, seenBefore, seenKey, timeOfSeenByTime } from './keys.js'
import { writeBatch } from './write-batch.js'

/** Time-ordered entries (one per enqueue group) handled per chunk. */
export const SWEEP_CHUNK = 200

type Db = Level<string, string>

export interface SweptChunk {
  /** Time-ordered entries removed: SWEEP_CHUNK means there may be more. */
  entries: number
  /** Ids forgotten. */
  forgotten: number
}

/** Delete up to `limit` time-ordered entries older than `cutoff`, and their ids' entries. */
export async function sweepChunk(db: Db, cutoff: number, limit = SWEEP_CHUNK): Promise<SweptChunk> {
  const groups = await db.iterator({ ...seenBefore(cutoff), limit }).all()
  if (groups.length === 0) return { entries: 0, forgotten: 0 }
  const ids: Array<{ id: string; at: number }> = []
  for (const [key, value] of groups) {
    const at = timeOfSeenByTime(key)
    for (const id of JSON.parse(value) as string[]) ids.push({ id, at })
  }
  const current = await db.getMany(ids.map((entry) => seenKey(entry.id)))
  const ops: Op[] = groups.map(([key]) => ({ type: 'del', key }))
  ids.forEach((entry, i) => {
    if (current[i] !== undefined && parseSeen(current[i]!).at === entry.at) ops.push({ type: 'del', key: seenKey(entry.id) })
  })
  await writeBatch(db, ops, false)
  return { entries: groups.length, forgotten: ops.length - groups.length }
}

export interface SweeperOptions {
  /** How often to sweep. */
  intervalMs: number
  /** One chunk of sweeping. */
  sweep: () => Promise<SweptChunk>
  onError: (err: unknown) => void
}

/** Runs the sweep on an unref'd timer so it never keeps the process alive. */
export class DedupeSweeper {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined

  constructor(private readonly options: SweeperOptions) {}

  start(): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs)
    this.timer.unref()
  }

  /** Stop the timer and wait for a sweep under way. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  /** Sweep until nothing expired is left; returns how many ids were forgotten. */
  async runOnce(): Promise<number> {
    if (this.running !== undefined) {
      await this.running
      return 0
    }
    let removed = 0
    const run = (async () => {
      for (;;) {
        const chunk = await this.options.sweep()
        removed += chunk.forgotten
        if (chunk.entries < SWEEP_CHUNK || this.timer === undefined) break
      }
    })().catch(this.options.onError)
    this.running = run
    await run
    this.running = undefined
    return removed
  }
}
