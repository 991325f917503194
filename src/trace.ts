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

export class TraceStore {
  private readonly entries = new Map<string, TraceStep[]>()

  constructor(private readonly nodeId: string, private readonly capacity = 10_000) {}

  add(id: string, state: string, extra: Pick<TraceStep, 'pipeline' | 'detail' | 'peer'> = {}): void {
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
    if (steps.length < 64) steps.push({ state, node: this.nodeId, at: new Date().toISOString(), ...extra })
  }

  get(id: string): TraceStep[] | undefined {
    return this.entries.get(id)
  }
}
