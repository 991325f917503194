// Gathers the records of concurrent writes into sends of at most `count` records. A
// send goes out as soon as `count` records wait; otherwise at once when no send is in
// flight (after the current turn, so writes made together share it), and while sends
// are in flight, when the last of them answers or `periodMs` after the first waiting
// record arrived, whichever comes first. So an idle destination gets each write at
// once, and a busy one fewer, larger sends, each record waiting at most `periodMs`:
// the callers (workers) wait for their writes, and a timer alone would cap them.
// A write resolves only once every send holding one of its records succeeded, and
// rejects with the first failure among them (its unsent records are then dropped from
// the queue: the caller retries the whole write). Nothing here retries, but the records
// of a failed write that a send did deliver are remembered (by identity: the caller
// retries with the same objects), and a retry skips them, so a failure of one shared
// POST does not deliver again what an earlier one already did.
// A send that no write waits for any more (each of its writes abandoned: a stop's grace
// ended, say) is aborted, so a stalled destination does not hold a stop for its whole
// timeout; its records were not acknowledged, and go again later.

interface Job {
  /** Records of this write still waiting to be sent. */
  unsent: number
  /** Records of this write that a send delivered. */
  delivered: unknown[]
  failed: boolean
  done: boolean
  /** The sends holding records of this write that have not answered yet. */
  sends: Set<InFlight>
  resolve(): void
  reject(err: unknown): void
  cleanup(): void
}

interface InFlight {
  jobs: Set<Job>
  controller: AbortController
}

interface Segment<T> {
  items: T[]
  job: Job
}

export interface BatcherOptions<T> {
  count: number
  periodMs: number
  /** `signal` aborts once no write waits for this send. */
  send(items: T[], signal: AbortSignal): Promise<void>
}

export class Batcher<T> {
  private segments: Segment<T>[] = []
  private waiting = 0
  private timer?: NodeJS.Timeout
  private immediate?: NodeJS.Immediate
  private readonly sending = new Set<Promise<void>>()
  /** Delivered records of failed writes (see the top). */
  private readonly deliveredBefore = new WeakSet<object>()

  constructor(private readonly options: BatcherOptions<T>) {}

  submit(all: T[], signal?: AbortSignal): Promise<void> {
    const items = all.filter((item) => !(typeof item === 'object' && item !== null && this.deliveredBefore.has(item)))
    if (items.length === 0) return Promise.resolve()
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => this.abandon(job, signal?.reason)
      const job: Job = {
        unsent: items.length,
        delivered: [],
        failed: false,
        done: false,
        sends: new Set(),
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.segments.push({ items, job })
      this.waiting += items.length
      this.schedule()
    })
  }

  /** Send everything still waiting now, and wait for every send to answer. */
  async flush(): Promise<void> {
    this.sendWaiting()
    await Promise.allSettled([...this.sending])
  }

  private schedule(): void {
    while (this.waiting >= this.options.count) this.sendOne()
    if (this.waiting === 0) {
      this.clearTimer()
      return
    }
    if (this.sending.size === 0) {
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined
        this.sendWaiting()
      })
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined
        this.sendWaiting()
      }, this.options.periodMs)
    }
  }

  private sendWaiting(): void {
    this.clearTimer()
    while (this.waiting > 0) this.sendOne()
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.immediate) clearImmediate(this.immediate)
    this.timer = undefined
    this.immediate = undefined
  }

  private sendOne(): void {
    const { count } = this.options
    const items: T[] = []
    const jobs = new Map<Job, T[]>()
    while (items.length < count && this.segments.length > 0) {
      const segment = this.segments[0]!
      const take = Math.min(count - items.length, segment.items.length)
      const taken = take === segment.items.length ? segment.items : segment.items.slice(0, take)
      if (take === segment.items.length) this.segments.shift()
      else segment.items = segment.items.slice(take)
      for (const item of taken) items.push(item)
      segment.job.unsent -= take
      const mine = jobs.get(segment.job)
      if (mine) mine.push(...taken)
      else jobs.set(segment.job, [...taken])
    }
    this.waiting -= items.length
    const flight: InFlight = { jobs: new Set(jobs.keys()), controller: new AbortController() }
    for (const job of jobs.keys()) job.sends.add(flight)
    const sent: Promise<void> = this.options
      .send(items, flight.controller.signal)
      .then(
        () => {
          for (const [job, mine] of jobs) {
            job.sends.delete(flight)
            // Delivered after its write failed: the retry may skip these already.
            if (job.failed) this.remember(mine)
            else job.delivered.push(...mine)
            if (!job.done && job.unsent === 0 && job.sends.size === 0) this.finish(job)
          }
        },
        (err: unknown) => {
          for (const job of jobs.keys()) {
            job.sends.delete(flight)
            this.finish(job, err, true)
          }
        },
      )
      .finally(() => {
        this.sending.delete(sent)
        // The last send answered: what gathered meanwhile goes now.
        if (this.sending.size === 0 && this.waiting > 0) this.schedule()
      })
    this.sending.add(sent)
  }

  /** Settle a job once; a failed one takes its unsent records out of the queue. */
  private finish(job: Job, err?: unknown, failed = false): void {
    if (job.done) return
    job.done = true
    job.cleanup()
    if (job.unsent > 0) {
      this.segments = this.segments.filter((s) => s.job !== job)
      this.waiting -= job.unsent
      job.unsent = 0
      if (this.waiting === 0) this.clearTimer()
    }
    if (failed) {
      job.failed = true
      this.remember(job.delivered)
      job.reject(err)
    } else job.resolve()
    job.delivered = []
  }

  private remember(items: unknown[]): void {
    for (const item of items) if (typeof item === 'object' && item !== null) this.deliveredBefore.add(item)
  }

  private abandon(job: Job, reason: unknown): void {
    this.finish(job, reason ?? new Error('aborted'), true)
    for (const flight of job.sends) if ([...flight.jobs].every((j) => j.done)) flight.controller.abort(reason)
  }
}
