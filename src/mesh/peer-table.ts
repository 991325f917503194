// The peers a node knows from gossip, with their last announced load. An entry older
// than `freshMs` is not used for handoff decisions (the peer may be gone or stalled);
// one older than `expireMs` is forgotten, on the next read (nothing else calls expire,
// and a peer that left for good must not stay in /stats forever).
import type { Announcement } from './announcement.js'

export interface PeerEntry {
  announcement: Announcement
  /** When we last heard from it (ms since the epoch). */
  heardAt: number
  /** Its HTTP API, with the host filled in from the address we reach it at. */
  httpUrl: string
}

export interface PeerView {
  node: string
  peerId: string
  http: string
  load: Pick<Announcement, 'depth' | 'inflight' | 'highWaterMark' | 'lowWaterMark' | 'maxEvents' | 'accepting' | 'drainRate'>
  pipelines: string[]
  ageMs: number
  connected: boolean
}

export class PeerTable {
  private readonly peers = new Map<string, PeerEntry>()
  /**
   * Peers that refused a handoff recently: not offered more until the given time, or
   * until they announce again after the refusal (with room, or withRoom skips them).
   */
  private readonly refused = new Map<string, { at: number; until: number }>()
  /**
   * Events handed to each peer since its last announcement: its announced depth plus
   * these is what it holds now, near enough, so a sender does not fill a peer past its
   * high-water mark between two announcements (and then wait out a refusal while the
   * peer drains and idles).
   */
  private readonly sentSince = new Map<string, number>()

  /** Is there a live connection to the peer? Unknown (always true) until set. */
  private connected: (peerId: string) => boolean = () => true

  constructor(private readonly freshMs: number, private readonly expireMs: number, private readonly now: () => number = Date.now) {}

  update(announcement: Announcement, httpUrl: string): void {
    this.peers.set(announcement.peerId, { announcement, heardAt: this.now(), httpUrl })
    this.sentSince.delete(announcement.peerId)
  }

  /** `events` were handed (or are being handed) to the peer. */
  noteSent(peerId: string, events: number): void {
    this.sentSince.set(peerId, (this.sentSince.get(peerId) ?? 0) + events)
  }

  /** How many more events the peer takes before its high-water mark, by our estimate. */
  room(e: PeerEntry): number {
    const a = e.announcement
    return a.highWaterMark - a.depth - (this.sentSince.get(a.peerId) ?? 0)
  }

  get(peerId: string): PeerEntry | undefined {
    return this.peers.get(peerId)
  }

  /** Forget peers not heard from for `expireMs`; returns how many were dropped. */
  expire(): number {
    let dropped = 0
    for (const [id, entry] of this.peers) {
      if (this.now() - entry.heardAt > this.expireMs) {
        this.peers.delete(id)
        dropped++
      }
    }
    for (const [id, r] of this.refused) if (r.until <= this.now()) this.refused.delete(id)
    return dropped
  }

  fresh(): PeerEntry[] {
    this.expire()
    const now = this.now()
    return [...this.peers.values()].filter((e) => now - e.heardAt <= this.freshMs)
  }

  setConnected(isConnected: (peerId: string) => boolean): void {
    this.connected = isConnected
  }

  markRefused(peerId: string, forMs: number): void {
    const now = this.now()
    this.refused.set(peerId, { at: now, until: now + forMs })
  }

  private refusedNow(e: PeerEntry, now: number): boolean {
    const r = this.refused.get(e.announcement.peerId)
    return r !== undefined && now < r.until && e.heardAt <= r.at
  }

  /**
   * Pipelines a peer must run to take this node's overflow: a handed-off event is
   * processed by the receiver's own pipelines, so one that lacks some of ours would
   * ack events without doing what this node would have done with them.
   */
  requiredPipelines: string[] = []

  /**
   * Fresh, connected peers with room under their own high-water mark (by our estimate)
   * that run our pipelines and take events. A peer that just died stays fresh for a few
   * intervals; its connection is gone at once, and a batch handed to it would wait in
   * the handing-off bucket until it comes back.
   */
  withRoom(): PeerEntry[] {
    const now = this.now()
    return this.fresh().filter((e) => {
      const a = e.announcement
      const runsOurs = this.requiredPipelines.every((p) => a.pipelines.includes(p))
      return runsOurs && a.accepting && this.room(e) > 0 && !this.refusedNow(e, now) && this.connected(a.peerId)
    })
  }

  /**
   * Power of two choices: two random candidates, the less loaded wins. Nearly as good
   * as always taking the least loaded, without every sender piling onto the same peer.
   */
  choose(candidates: PeerEntry[] = this.withRoom()): PeerEntry | undefined {
    if (candidates.length <= 1) return candidates[0]
    const i = Math.floor(Math.random() * candidates.length)
    let j = Math.floor(Math.random() * (candidates.length - 1))
    if (j >= i) j++
    const a = candidates[i]!
    const b = candidates[j]!
    return this.loadOf(a) <= this.loadOf(b) ? a : b
  }

  leastLoaded(): PeerEntry | undefined {
    return this.withRoom().sort((a, b) => this.loadOf(a) - this.loadOf(b))[0]
  }

  /** How full a peer is, relative to its own high-water mark, counting what we sent it since it spoke. */
  loadOf(e: PeerEntry): number {
    const a = e.announcement
    return (a.depth + (this.sentSince.get(a.peerId) ?? 0)) / Math.max(1, a.highWaterMark)
  }

  runners(pipeline: string): PeerEntry[] {
    return this.fresh().filter((e) => e.announcement.pipelines.includes(pipeline))
  }

  view(isConnected: (peerId: string) => boolean): PeerView[] {
    this.expire()
    const now = this.now()
    return [...this.peers.values()].map((e) => {
      const a = e.announcement
      return {
        node: a.node, peerId: a.peerId, http: e.httpUrl,
        load: { depth: a.depth, inflight: a.inflight, highWaterMark: a.highWaterMark, lowWaterMark: a.lowWaterMark, maxEvents: a.maxEvents, accepting: a.accepting, drainRate: a.drainRate },
        pipelines: a.pipelines, ageMs: now - e.heardAt, connected: isConnected(a.peerId),
      }
    })
  }
}
