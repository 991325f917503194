// Wakes workers waiting for events. A waiter resolves when work may be there, when its
// signal aborts, or when the queue closes: workers then call dequeue, which returns []
// or rejects with BINGE_QUEUE_CLOSED, so a wake-up is never mistaken for an event.
//
// The waiters are woken at the end of the event-loop turn in which work appeared
// (setImmediate), once for all the notices of that turn: the events of every request
// read in the turn are then taken as one batch, not one event per wake-up. Woken at
// once, a worker in memory mode (where each single-event POST is enqueued alone) took
// each event by itself: the main thread spent 1.5x the CPU per POST, and the node
// reached 0.7x the rate (medians of six alternating runs on the 2-core machine). A
// wake-up comes at most one turn later; one that finds nothing (another worker took
// it) only waits again.

export class WorkSignal {
  private readonly waiters = new Set<() => void>()
  private scheduled = false

  wait(ready: () => boolean, signal?: AbortSignal): Promise<void> {
    if (ready() || signal?.aborted === true) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      this.waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  /**
   * Wake every waiter, at the end of this turn. A waiter that starts waiting meanwhile
   * is woken too; one that starts after finds the work through `ready`.
   */
  notify(): void {
    if (this.scheduled || this.waiters.size === 0) return
    this.scheduled = true
    setImmediate(this.wakeAll)
  }

  private readonly wakeAll = (): void => {
    this.scheduled = false
    for (const done of [...this.waiters]) done()
  }
}
