// How far this node believes a peer's announced room: claims are checked against deeds.
// Each peer has a credit, the events it may hold from us that its own gossip has not yet
// accounted for. It starts at one handoff batch and grows by `growth` times what the
// peer's announcements account for (slow start, with the announcements as the acks):
// what its drain rate says it finished, plus how much its backlog grew (a peer whose own
// output is slow holds what it took; that is what its room is for), up to `max`. A peer
// that acks batches while its announcements never show them (depth flat, drain 0: it
// keeps nothing) gets its first credit and then nothing more, however much room it
// announces. A liar that also forges its depth or drain rate gets only what those claims
// would explain, and at most `max` per `minConfirmMs` (mesh.ts: 200 ms, four fifths of
// the 250 ms an honest peer keeps, so jitter does not put its confirmation off to the
// next one): a bound on its take, which gossip alone cannot tighten. A node announces
// early after taking a handoff (gossip.ts `soon`): at once after the first, then every
// 250 ms while a handoff runs, so with the default 1 s interval the credit of an honest
// peer is confirmed within a round trip of its first batch, then every 250 ms, not every
// second (which held a peer to 16 batches a second: 5,901 against 18,733 events/s).
// mesh.ts sets `max` to 64 batches: with 16, a handoff ran at most 16 batches per
// confirmation (17k events/s of 512-event batches); with 64 it reaches 33k, CPU-bound.
// `growth` only sets how soon a peer that shows what it took reaches `max`, so it
// changes neither bound. mesh.ts sets it to 16: one batch becomes 17, then 64, in two
// announcements (500 ms), where 4 took three (5, 25, 64) and growth 1 took four to reach
// sixteen. A handoff of a burst is over in a few seconds, so the ramp is a good part of
// it (measured: of 100,000 events, 3,072 moved in the first 0.5 s with 4, 7,680 with 16;
// a burst of 10,000 moved at 15.8-16.6k events/s against 13.0-14.0k).

interface Account {
  credit: number
  /** Events handed to the peer (or on the way) that no announcement of its has accounted for. */
  unconfirmed: number
  /** When its previous announcement arrived (ms since the epoch). */
  heardAt?: number
  /** When an announcement of its last confirmed anything: the next may confirm only `minConfirmMs` on. */
  confirmedAt?: number
  /** The events it held (unprocessed and in flight) by its previous announcement. */
  held?: number
}

export interface CreditView {
  credit: number
  unconfirmed: number
}

export class PeerCredit {
  private readonly accounts = new Map<string, Account>()

  /**
   * `initial`: one handoff batch; `max`: the most any peer may hold unaccounted for;
   * `growth`: credit per event accounted for; `minConfirmMs`: an announcement sooner than
   * this after the last one that confirmed anything is not taken (the next one takes what
   * it would have), so a peer announcing as often as it likes still takes at most `max`
   * per this time. One that confirmed nothing (before any handoff) starts no such wait.
   */
  constructor(
    public initial = 256,
    public max = 16 * 256,
    public growth = 4,
    public minConfirmMs = 0,
  ) {}

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
   * The peer announced itself, holding `held` events and finishing `drainRate` a second:
   * what it finished since its previous announcement, and what its backlog grew by,
   * account for as much of ours, and the credit grows by that much.
   */
  heard(peerId: string, held: number, drainRate: number, at: number): void {
    const a = this.account(peerId)
    if (a.confirmedAt !== undefined && at - a.confirmedAt < this.minConfirmMs) return
    const finished = a.heardAt === undefined ? 0 : (drainRate * Math.max(0, at - a.heardAt)) / 1000
    const grew = a.held === undefined ? 0 : Math.max(0, held - a.held)
    const confirmed = Math.min(a.unconfirmed, finished + grew)
    a.unconfirmed -= confirmed
    a.credit = Math.min(this.max, a.credit + this.growth * confirmed)
    if (confirmed > 0) a.confirmedAt = at
    a.heardAt = at
    a.held = held
  }

  forget(peerId: string): void {
    this.accounts.delete(peerId)
  }

  view(peerId: string): CreditView {
    const a = this.accounts.get(peerId)
    return { credit: Math.floor(a?.credit ?? this.initial), unconfirmed: Math.ceil(a?.unconfirmed ?? 0) }
  }
}

/**
 * How soon a node that took a handoff announces again (gossip.ts `soon`): 250 ms, or
 * the interval if shorter.
 */
export function announceSpacing(gossipIntervalMs: number): number {
  return Math.min(250, gossipIntervalMs)
}

/**
 * How often a peer's announcements can confirm a handoff (PeerCredit): four fifths
 * of the spacing an honest peer keeps, so one that arrives a little early (the
 * timers and the network jitter) still counts, and is not put off to the next one,
 * which halved the rate a handoff ran at.
 */
export function confirmSpacing(gossipIntervalMs: number): number {
  return Math.floor(0.8 * announceSpacing(gossipIntervalMs))
}
