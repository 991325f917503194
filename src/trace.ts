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

  constructor(private readonly nodeId: string, private readonly capacity = 10_000) {}

  /** Record a step; `extra` is kept as given (callers pass one object for a whole batch). */
  add(id: string, state: string, extra?: TraceExtra): void {
    let steps = this.entries.get(id)
    if (!steps) {
      if (this.entries.size >= this.capacity) {
        const oldest = this.entries.keys().next().value
        if (oldest !== undefined) this.entries.delete(oldest)
      }
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
