// Whether a peer answers handoffs, judged only by what it answered us on our own
// connection to it (a handoff answer, or a ping), never by gossip, which others relay:
// a peer we cannot reach may still be heard through a third node. A peer is suspect
// from an unknown outcome until its next handoff answer, and while a handoff to it has
// gone unanswered for `stallMs`; the offloader gives a suspect peer no new batch and at
// most one slot, so the rest of its slots go to peers that answer. A peer that has not
// answered a handoff yet gets one batch at a time until it does.

/** A handoff unanswered this long makes its peer suspect: a healthy one answers in milliseconds. */
export const defaultStallMs = 1_000

interface State {
  /** Start times of the handoffs to the peer still waiting for an answer, by send number. */
  waiting: Map<number, number>
  answeredAt: number
  failedAt: number
  /** Last ping the peer answered. */
  pingedAt: number
}

export class PeerHealth {
  private readonly peers = new Map<string, State>()
  private sends = 0

  constructor(
    private readonly stallMs = defaultStallMs,
    private readonly now: () => number = Date.now,
  ) {}

  private state(peer: string): State {
    let s = this.peers.get(peer)
    if (s === undefined) this.peers.set(peer, (s = { waiting: new Map(), answeredAt: 0, failedAt: 0, pingedAt: 0 }))
    return s
  }

  /**
   * Run `send` (one handoff to `peer`) and note its outcome: an answer, or (a rejection
   * other than `nothingSent`) an unknown outcome.
   */
  async track<T>(peer: string, send: () => Promise<T>, nothingSent: (err: unknown) => boolean): Promise<T> {
    const s = this.state(peer)
    const n = ++this.sends
    s.waiting.set(n, this.now())
    try {
      const answer = await send()
      s.answeredAt = this.now()
      return answer
    } catch (err) {
      if (!nothingSent(err)) s.failedAt = this.now()
      throw err
    } finally {
      s.waiting.delete(n)
    }
  }

  /** The peer answered a ping on our connection: it is there, if not yet answering handoffs. */
  pinged(peer: string): void {
    const s = this.peers.get(peer)
    if (s !== undefined) s.pingedAt = this.now()
  }

  healthy(peer: string): boolean {
    const s = this.peers.get(peer)
    if (s === undefined) return true
    if (s.failedAt > s.answeredAt) return false
    const stalledBefore = this.now() - this.stallMs
    for (const startedAt of s.waiting.values()) if (startedAt < stalledBefore) return false
    return true
  }

  /** May the peer be given one more batch now: healthy, and answered before or nothing under way? */
  ready(peer: string): boolean {
    const s = this.peers.get(peer)
    return s === undefined || (this.healthy(peer) && (s.answeredAt > 0 || s.waiting.size === 0))
  }

  /** When the peer last answered us anything (a handoff or a ping); 0 if never since it failed. */
  aliveAt(peer: string): number {
    const s = this.peers.get(peer)
    return s === undefined ? this.now() : Math.max(s.answeredAt, s.pingedAt)
  }
}
