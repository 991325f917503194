// How far this node believes a peer's announced room: claims are checked against deeds.
// Each peer has a credit, the events it may hold from us that its own gossip has not yet
// accounted for. It starts at one handoff batch and grows by what the peer's announced
// drain rate accounts for (slow start, with the peer's announcements as the acks), up to
// `max`. A peer that acks batches while its announcements never show them drained (depth
// flat, drain 0: it keeps nothing) gets its first credit and then nothing more, however
// much room it announces. A liar that also forges a drain rate gets only what that rate
// would have finished: a bound on its take, which gossip alone cannot tighten.

interface Account {
  credit: number
  /** Events handed to the peer (or on the way) that no announcement of its has accounted for. */
  unconfirmed: number
  /** When its previous announcement arrived (ms since the epoch). */
  heardAt?: number
}

export interface CreditView {
  credit: number
  unconfirmed: number
}

export class PeerCredit {
  private readonly accounts = new Map<string, Account>()

  /** `initial`: one handoff batch; `max`: the most any peer may hold unaccounted for. */
  constructor(public initial = 256, public max = 16 * 256) {}

  private account(peerId: string): Account {
    let a = this.accounts.get(peerId)
    if (!a) this.accounts.set(peerId, (a = { credit: this.initial, unconfirmed: 0 }))
    return a
  }

  /** Events we may still hand the peer before it accounts for what it has. */
  available(peerId: string): number {
    const a = this.accounts.get(peerId)
    return a ? Math.floor(a.credit - a.unconfirmed) : this.initial
  }

  /** `events` were handed to the peer (negative: it refused them, so it holds none of them). */
  sent(peerId: string, events: number): void {
    const a = this.account(peerId)
    a.unconfirmed = Math.max(0, a.unconfirmed + events)
  }

  /**
   * The peer announced itself: what it claims to have finished since its previous
   * announcement accounts for as much of ours, and the credit grows by that much.
   */
  heard(peerId: string, drainRate: number, at: number): void {
    const a = this.account(peerId)
    const finished = a.heardAt === undefined ? 0 : (drainRate * Math.max(0, at - a.heardAt)) / 1000
    const confirmed = Math.min(a.unconfirmed, finished)
    a.unconfirmed -= confirmed
    a.credit = Math.min(this.max, a.credit + confirmed)
    a.heardAt = at
  }

  forget(peerId: string): void {
    this.accounts.delete(peerId)
  }

  view(peerId: string): CreditView {
    const a = this.accounts.get(peerId)
    return { credit: Math.floor(a?.credit ?? this.initial), unconfirmed: Math.ceil(a?.unconfirmed ?? 0) }
  }
}
