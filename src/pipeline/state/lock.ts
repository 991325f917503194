// A first-come first-served lock held across awaits: a stateful pipeline is held from
// the start of a batch's transform until that batch's ack is written (or its flush is
// committed), so state written with an ack is never overwritten by an older snapshot
// and never holds the effect of an event that is not acked.

export type Release = () => void

export class Lock {
  private tail: Promise<void> = Promise.resolve()
  private holders = 0

  /** Resolves with a release function once every earlier caller has released. */
  acquire(): Promise<Release> {
    let open!: () => void
    const released = new Promise<void>((resolve) => (open = resolve))
    const turn = this.tail.then(() => {
      this.holders++
      let done = false
      return () => {
        if (done) return
        done = true
        this.holders--
        open()
      }
    })
    this.tail = this.tail.then(() => released)
    return turn
  }

  /** Held or waited for right now (tests and diagnostics). */
  get busy(): boolean {
    return this.holders > 0
  }
}

/** Acquire every lock, one after the other in the order given, which callers keep global to avoid deadlock. */
export async function acquireAll(locks: Lock[]): Promise<Release> {
  const releases: Release[] = []
  for (const lock of locks) releases.push(await lock.acquire())
  return () => {
    for (const release of releases.reverse()) release()
  }
}
