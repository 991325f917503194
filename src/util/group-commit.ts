// Group commit: calls that arrive while a flush is running are gathered and the next
// flush takes them all, so N concurrent callers pay for one fsync, not N. There is no
// timer: with nothing in progress a call flushes at once, so a lone caller waits for
// its own write only. Each caller resolves after the flush holding its items.

interface Waiter<T> {
  items: T[]
  resolve: () => void
  reject: (err: unknown) => void
}

export class GroupCommit<T> {
  private pending: Waiter<T>[] = []
  private running = false
  private idle: Promise<void> = Promise.resolve()
  private settleIdle: () => void = () => {}

  constructor(private readonly flush: (items: T[]) => Promise<void>) {}

  submit(items: T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ items, resolve, reject })
      if (!this.running) void this.run()
    })
  }

  /** Resolves when nothing is pending or being flushed. */
  drained(): Promise<void> {
    return this.running ? this.idle : Promise.resolve()
  }

  private async run(): Promise<void> {
    this.running = true
    this.idle = new Promise((resolve) => (this.settleIdle = resolve))
    while (this.pending.length > 0) {
      const group = this.pending
      this.pending = []
      try {
        await this.flush(group.flatMap((w) => w.items))
        for (const w of group) w.resolve()
      } catch (err) {
        for (const w of group) w.reject(err)
      }
    }
    this.running = false
    this.settleIdle()
  }
}
