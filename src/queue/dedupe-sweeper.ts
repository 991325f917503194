// Background expiry of the durable dedupe index. Entries older than the window are
// found by a range over the time-ordered keys (never a scan of the whole index) and
// deleted a chunk at a time. Invariants: the sweep only ever removes an id's entry if
// it still holds the time being expired (the id may have been accepted again since);
// a late sweep is harmless because lookups ignore entries older than the window.

import type { Level } from 'level'
import { parseSeenByTime, seenBefore, seenKey } from './keys.js'

export const SWEEP_CHUNK = 1000

type Db = Level<string, string>
type Op = { type: 'del'; key: string }

/** Delete up to `limit` expired entries older than `cutoff`; returns how many ids. */
export async function sweepChunk(db: Db, cutoff: number, limit = SWEEP_CHUNK): Promise<number> {
  const keys = await db.keys({ ...seenBefore(cutoff), limit }).all()
  if (keys.length === 0) return 0
  const entries = keys.map((key) => ({ key, ...parseSeenByTime(key) }))
  const current = await db.getMany(entries.map((e) => seenKey(e.id)))
  const ops: Op[] = []
  entries.forEach((e, i) => {
    ops.push({ type: 'del', key: e.key })
    if (current[i] !== undefined && Number(current[i]) === e.at) {
      ops.push({ type: 'del', key: seenKey(e.id) })
    }
  })
  await db.batch(ops, { sync: false })
  return keys.length
}

export interface SweeperOptions {
  /** How often to sweep. */
  intervalMs: number
  /** One chunk of sweeping; returns entries removed (SWEEP_CHUNK: there may be more). */
  sweep: () => Promise<number>
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

  /** Sweep until nothing expired is left; returns entries removed. */
  async runOnce(): Promise<number> {
    if (this.running !== undefined) {
      await this.running
      return 0
    }
    let removed = 0
    const run = (async () => {
      for (;;) {
        const n = await this.options.sweep()
        removed += n
        if (n < SWEEP_CHUNK || this.timer === undefined) break
      }
    })().catch(this.options.onError)
    this.running = run
    await run
    this.running = undefined
    return removed
  }
}

export function sweepInterval(windowMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(windowMs / 4)))
}
