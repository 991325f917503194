// Bounds what a power cut can undo. Moves and acks are written without fsync (a kill -9
// keeps them: LevelDB has handed them to the OS), so a power cut can only lose those
// written since the store's last fsync'd write, and the events they finished are then
// processed again. Any fsync'd write persists every write before it (one log), so this
// forces one at most `intervalMs` after an unsynced write, unless another sync came
// first: duplicates after a power cut stay under what was in flight plus what was
// acked in the last interval, for at most one extra fsync per interval.

export class LazySync {
  private timer?: NodeJS.Timeout

  constructor(
    private readonly intervalMs: number,
    private readonly syncNow: () => Promise<void>,
  ) {}

  /** An unsynced write just landed: make sure a sync follows within the interval. */
  unsynced(): void {
    if (this.timer || !(this.intervalMs > 0)) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      // A failure (store closing or faulted) leaves the next write to try again.
      this.syncNow().catch(() => {})
    }, this.intervalMs)
    this.timer.unref()
  }

  /** An fsync'd write just landed: everything before it is on disk. */
  synced(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  stop(): void {
    this.synced()
  }
}
