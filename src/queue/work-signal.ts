// Wakes workers waiting for events. A waiter resolves when work may be there, when its
// signal aborts, or when the queue closes: workers then call dequeue, which returns []
// or rejects with BINGE_QUEUE_CLOSED, so a wake-up is never mistaken for an event.

export class WorkSignal {
  private readonly waiters = new Set<() => void>()

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

  /** Wake every waiter. */
  notify(): void {
    for (const done of [...this.waiters]) done()
  }
}
