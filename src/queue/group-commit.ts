// Group commit: calls that arrive while writes are in progress are gathered and the next
// write takes them all, so N concurrent callers share one fsync instead of paying N. No
// timer: when nothing is being written, the group starts at the end of the current tick
// (a microtask), so a lone caller waits for nobody. Up to `maxInFlight` groups may be
// written at once (LevelDB queues concurrent writers and merges those waiting into one
// log write and one sync, so a second group in flight fills the gap between one sync
// and the next instead of waiting for this loop to notice the first finished).
// Invariants: groups start in arrival order (a commit that must see the effects of the
// groups before it orders itself, as the durable queue's planning mutex does); an
// exclusive task starts only once every group before it has finished, and no group
// starts until it has; each caller settles only after the write holding its input
// has finished.
// It knows nothing of LevelDB (the file output groups its appends with it too), so it
// sits beside the backends rather than in durable/.

/** Per input: its result, or the error that caller alone gets (e.g. queue full). */
export type Outcome<O> = { ok: true; value: O } | { ok: false; error: unknown }

export type CommitGroup<I, O> = (inputs: I[]) => Promise<Array<Outcome<O>>>

interface Submitted<I, O> {
  kind: 'input'
  input: I
  resolve: (value: O) => void
  reject: (error: unknown) => void
}

interface Exclusive {
  kind: 'exclusive'
  run: () => Promise<void>
}

export interface GroupCommitStats {
  /** Groups written (each is one commit call). */
  groups: number
  /** Inputs carried by those groups. */
  inputs: number
}

export class GroupCommit<I, O> {
  private readonly waiting: Array<Submitted<I, O> | Exclusive> = []
  /** Groups being written now. */
  private readonly writing = new Set<Promise<void>>()
  private exclusiveRunning = false
  private scheduled = false
  private idle: Array<() => void> = []
  private readonly counts: GroupCommitStats = { groups: 0, inputs: 0 }

  /**
   * @param commit writes one group; throwing fails every input of the group.
   * @param maxInputs inputs per group at most (1: every call is its own write).
   * @param maxInFlight groups written at once at most (1: strictly one after another).
   */
  constructor(
    private readonly commit: CommitGroup<I, O>,
    private readonly maxInputs = Number.POSITIVE_INFINITY,
    private readonly maxInFlight = 1,
  ) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ kind: 'input', input, resolve, reject })
      this.kick()
    })
  }

  /**
   * Run `fn` between two groups, with no group writing meanwhile: for work that must
   * not interleave with a group (the dedupe sweep, anything taking sequence numbers).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ kind: 'exclusive', run: () => fn().then(resolve, reject) })
      this.kick()
    })
  }

  /** Resolves once everything submitted so far has settled. */
  drain(): Promise<void> {
    if (this.waiting.length === 0 && this.writing.size === 0 && !this.exclusiveRunning && !this.scheduled) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }

  stats(): GroupCommitStats {
    return { ...this.counts }
  }

  private kick(): void {
    if (this.scheduled) return
    this.scheduled = true
    // A microtask, not a timer: callers submitting in the same tick join one group.
    queueMicrotask(() => {
      this.scheduled = false
      this.pump()
    })
  }

  /** Start what may start now; called again whenever a write or an exclusive task ends. */
  private pump(): void {
    while (this.waiting.length > 0 && !this.exclusiveRunning) {
      const head = this.waiting[0]!
      if (head.kind === 'exclusive') {
        // It runs alone: after every group before it, and before any after it.
        if (this.writing.size > 0) return
        this.waiting.shift()
        this.exclusiveRunning = true
        void head.run().finally(() => {
          this.exclusiveRunning = false
          this.pump()
        })
        return
      }
      if (this.writing.size >= this.maxInFlight) return
      let size = 0
      while (size < this.waiting.length && size < this.maxInputs) {
        if (this.waiting[size]!.kind !== 'input') break
        size++
      }
      const written: Promise<void> = this.write(this.waiting.splice(0, size) as Array<Submitted<I, O>>).finally(() => {
        this.writing.delete(written)
        this.pump()
      })
      this.writing.add(written)
    }
    if (this.waiting.length === 0 && this.writing.size === 0 && !this.exclusiveRunning) {
      const idle = this.idle
      this.idle = []
      for (const resolve of idle) resolve()
    }
  }

  private async write(group: Array<Submitted<I, O>>): Promise<void> {
    this.counts.groups++
    this.counts.inputs += group.length
    try {
      const outcomes = await this.commit(group.map((call) => call.input))
      group.forEach((call, i) => {
        const outcome = outcomes[i]
        if (outcome === undefined) call.reject(new Error('group commit returned no outcome'))
        else if (outcome.ok) call.resolve(outcome.value)
        else call.reject(outcome.error)
      })
    } catch (err) {
      for (const call of group) call.reject(err)
    }
  }
}
