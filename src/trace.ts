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

/** Steps kept per id of capacity: received, dequeued, processed (a pipeline or more), acked. */
const STEPS_PER_ID = 4
/** Steps of one id shown at most: a replayed poison event must not fill an answer. */
const MAX_STEPS_SHOWN = 64

export class TraceStore {
  /**
   * A ring of steps, one slot per step in four parallel arrays: adding one is four array
   * writes. (Keeping a Map of id to steps cost an add half a microsecond, a tenth of
   * batch ingest's CPU at 70k events/s, in hashing and Map upkeep.) A lookup, which
   * only GET /events/ID and a peer's trace request make, scans the ring instead.
   */
  private readonly ids: Array<string | undefined>
  private readonly states: string[]
  private readonly ats: Float64Array
  private readonly extras: Array<TraceExtra | undefined>
  private next = 0

  /** `capacity`: ids whose usual steps are kept; the oldest steps are forgotten first. */
  constructor(
    private readonly nodeId: string,
    capacity = 10_000,
  ) {
    const slots = Math.max(1, capacity) * STEPS_PER_ID
    this.ids = new Array<string | undefined>(slots)
    this.states = new Array<string>(slots)
    this.ats = new Float64Array(slots)
    this.extras = new Array<TraceExtra | undefined>(slots)
  }

  /** Record a step; `extra` is kept as given (callers pass one object for a whole batch). */
  add(id: string, state: string, extra?: TraceExtra): void {
    const i = this.next
    this.ids[i] = id
    this.states[i] = state
    this.ats[i] = Date.now()
    this.extras[i] = extra
    this.next = i + 1 === this.ids.length ? 0 : i + 1
  }

  get(id: string): TraceStep[] | undefined {
    const steps: TraceStep[] = []
    const slots = this.ids.length
    for (let n = 0; n < slots; n++) {
      const i = (this.next + n) % slots // oldest first
      if (this.ids[i] !== id) continue
      steps.push({ state: this.states[i]!, node: this.nodeId, at: new Date(this.ats[i]!).toISOString(), ...this.extras[i] })
    }
    if (steps.length === 0) return undefined
    return steps.length > MAX_STEPS_SHOWN ? steps.slice(-MAX_STEPS_SHOWN) : steps
  }
}
