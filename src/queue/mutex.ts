// A promise chain that runs critical sections one at a time, in call order. The queue
// uses it where two writers must not interleave (dequeue's cursor against nack).

export class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn)
    // The next section waits for this one to settle, whether it failed or not.
    this.tail = result.catch(() => undefined)
    return result
  }
}
