// Enqueue groups between their planning and the moment their events become visible.
// Several groups may be written at once (group-commit.ts), and LevelDB may finish them
// in any order; but dequeue and takes read unprocessed keys from a cursor that only
// moves forward, so a key must never appear after a later key was read. A group's
// events therefore count, and can be read, only once every group planned before it has
// settled: `visibleSeq` is the first sequence number of the oldest unsettled group.
//
// Design constraints:
// - Groups are pushed in planning order, which is sequence order.
// - A failed group is dropped without counting: its numbers are skipped, never reused.
// - Room: what unsettled groups will add counts against the caps before it is visible.
// - Dedupe: a group that plans an id an unsettled group holds must wait for that group's
//   outcome (`waitFor`), or a resend could be taken twice or answered "duplicate" for
//   an event whose write then failed.

import type { Written } from './recent-events.js'

/**
 * Enqueue groups written at once, by `queue.sync`. With `always` every call is its own
 * write, and LevelDB merges the sync writers waiting behind one into one log write and
 * one sync: four in flight measured 1.8x the requests/s of one (1 KB events, 50
 * connections, `BENCH_ONLY=modes npm run bench`). With `batch` our own group commit
 * already gathers every waiting call, and a second group in flight only split the
 * groups (11 events per fsync instead of 19) and lost 10-25%: one at a time.
 */
export function groupsInFlight(sync: 'batch' | 'always' | 'none'): number {
  return sync === 'always' ? 4 : 1
}

export interface PendingGroup {
  /** Its first sequence number; its events hold `added` numbers from here. */
  from: number
  added: number
  addedBytes: number
  /** Its indexed ids. */
  ids: ReadonlySet<string>
  /** Its events as written, in sequence order from `from` (recent-events.ts keeps them). */
  stored?: readonly Written[]
}

/** What settling made visible: counts, and each written group's events from its first number. */
export interface Shown {
  events: number
  bytes: number
  groups: Array<{ from: number; stored: readonly Written[] }>
}

interface Tracked extends PendingGroup {
  settled: boolean
  failed: boolean
  written: Promise<void>
  done(): void
}

/** Settle a group (failed or written); returns what became visible, if anything. */
export type Settle = (failed: boolean) => Shown | undefined

export class PendingGroups {
  private readonly groups: Tracked[] = []

  /** Track a group just planned (in planning order); settle it with the function returned. */
  push(group: PendingGroup): Settle {
    let done!: () => void
    const tracked: Tracked = {
      ...group,
      settled: false,
      failed: false,
      written: new Promise<void>((resolve) => {
        done = resolve
      }),
      done: () => done(),
    }
    this.groups.push(tracked)
    return (failed) => {
      tracked.settled = true
      tracked.failed = failed
      return this.publish()
    }
  }

  /** The first sequence number not yet visible; `nextSeq` when no group is unsettled. */
  visibleSeq(nextSeq: number): number {
    return this.groups[0]?.from ?? nextSeq
  }

  /** Events and bytes planned but not yet visible. */
  coming(): { events: number; bytes: number } {
    let events = 0
    let bytes = 0
    for (const group of this.groups) {
      if (group.failed) continue
      events += group.added
      bytes += group.addedBytes
    }
    return { events, bytes }
  }

  /** Resolves once no unsettled group holds any of `ids` (at once when none does). */
  async waitFor(ids: Iterable<string>): Promise<void> {
    const wanted = [...ids]
    const holding = this.groups.filter((group) => !group.settled && wanted.some((id) => group.ids.has(id)))
    await Promise.all(holding.map((group) => group.written))
  }

  /** Drop the settled groups at the head; the events and bytes of those that were written become visible. */
  private publish(): Shown | undefined {
    let shown: Shown | undefined
    while (this.groups[0]?.settled) {
      const group = this.groups.shift()!
      group.done()
      if (group.failed) continue
      shown ??= { events: 0, bytes: 0, groups: [] }
      shown.events += group.added
      shown.bytes += group.addedBytes
      if (group.stored !== undefined) shown.groups.push({ from: group.from, stored: group.stored })
    }
    return shown
  }
}
