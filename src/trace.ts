// A bounded, in-memory record of where recent events went (GET /events/ID). It is a
// debugging aid, not a ledger: the oldest ids are forgotten first and nothing of it
// survives a restart, so it never competes with the queue for disk or memory.

export interface TraceStep {
  state: string
  node: string
  at: string
  pipeline?: string
  detail?: string
  /** For handoffs: the peer id on the other side, so a trace can be followed there. */
  peer?: string
}

type TraceExtra = Pick<TraceStep, 'pipeline' | 'detail' | 'peer'>

/** A step as kept: the time as a number and the extra fields shared, not copied (add is per event). */
interface StoredStep {
  state: string
  at: number
  extra: TraceExtra | undefined
}

export class TraceStore {
  private readonly entries = new Map<string, StoredStep[]>()
  /**
   * Ids in the order they arrived, a ring: the slot to fill next holds the oldest, which
   * goes. (Evicting by `entries.keys().next()` was measured at several microseconds per
   * new id: a Map iterator steps over every deleted slot at its front.)
   */
  private readonly order: Array<string | undefined>
  private next = 0

  constructor(
    private readonly nodeId: string,
    capacity = 10_000,
  ) {
    this.order = new Array<string | undefined>(Math.max(1, capacity))
  }

  /** Record a step; `extra` is kept as given (callers pass one object for a whole batch). */
  add(id: string, state: string, extra?: TraceExtra): void {
    let steps = this.entries.get(id)
    if (!steps) {
      const oldest = this.order[this.next]
      if (oldest !== undefined) this.entries.delete(oldest)
      this.order[this.next] = id
      this.next = (this.next + 1) % this.order.length
      steps = []
      this.entries.set(id, steps)
    }
    // Bound one id's history too: a replayed poison event must not grow without end.
    if (steps.length < 64) steps.push({ state, at: Date.now(), extra })
  }

  get(id: string): TraceStep[] | undefined {
    return this.entries.get(id)?.map((s) => ({ state: s.state, node: this.nodeId, at: new Date(s.at).toISOString(), ...s.extra }))
  }
}
