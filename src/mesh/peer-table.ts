// The peers a node knows from gossip, with their last announced load. An entry older
// than `freshMs` is not used for handoff decisions (the peer may be gone or stalled);
// one older than `expireMs` is forgotten, on the next read (nothing else calls expire,
// and a peer that left for good must not stay in /stats forever).
// Claims are not taken on faith: a peer's room is capped by its credit (peer-credit.ts);
// a node name belongs to the first fresh peer id that claims it, and a second claimant
// is flagged and never chosen; overflow goes only to peers we hold a connection to,
// whose handshake proved their id, never to one known only from relayed gossip.
import { createHash } from 'node:crypto'
import type { Announcement } from './announcement.js'
import { PeerCredit } from './peer-credit.js'

export interface PeerEntry {
  announcement: Announcement
  /** When we last heard from it (ms since the epoch). */
  heardAt: number
  /** Its HTTP API, with the host filled in from the address we reach it at. */
  httpUrl: string
  /** Another peer id owns the node name this one announces: listed, never chosen. */
  conflictWith?: string
}

export interface PeerView {
  node: string
  peerId: string
  http: string
  load: Pick<Announcement, 'depth' | 'inflight' | 'highWaterMark' | 'lowWaterMark' | 'maxEvents' | 'accepting' | 'drainRate'>
  pipelines: string[]
  ageMs: number
  connected: boolean
  /** Another peer id announced this node name first: this one is not believed. */
  conflict: boolean
  /** Events this node may hand the peer beyond what its gossip has accounted for. */
  credit: number
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
  /**
   * Events in handoff batches on their way to each peer, not answered yet. The peer may
   * announce before it has stored them, so an announcement does not account for them:
   * they count against its room until the answer comes (then in `sentSince`). Without
   * this, each announcement during a burst made room for the batches already under way,
   * the peer was filled past its high-water mark and handed the excess on again.
   */
  private readonly inFlight = new Map<string, number>()

  /** Which peer id each node name belongs to: the first to claim it, while it holds it. */
  private readonly owners = new Map<string, string>()
  readonly credit = new PeerCredit()
  /** This node's own name and peer id: no peer may claim the name either. */
  self?: { node: string; peerId: string }

  /** Is there a live connection to the peer? None is assumed until set. */
  private connected: (peerId: string) => boolean = () => false

  constructor(
    private readonly freshMs: number,
    readonly expireMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Record an announcement. Returns the owner's peer id when this peer claims a node
   * name another peer holds, the first time it does (for a warning), else undefined.
   */
  update(announcement: Announcement, httpUrl: string): string | undefined {
    const now = this.now()
    const { node, peerId } = announcement
    const before = this.peers.get(peerId)
    const conflictWith = this.holderOf(node, peerId, now)
    if (conflictWith === undefined) this.owners.set(node, peerId)
    this.peers.set(peerId, { announcement, heardAt: now, httpUrl, ...(conflictWith !== undefined ? { conflictWith } : {}) })
    this.sentSince.delete(peerId)
    this.credit.heard(peerId, announcement.depth + announcement.inflight, announcement.drainRate, now)
    return conflictWith !== undefined && before?.conflictWith !== conflictWith ? conflictWith : undefined
  }

  /**
   * The other peer id that holds `node`, if any. An owner keeps its name while it is
   * fresh or still connected; a node restarted under a new peer id (its data dir lost)
   * takes its name back once the old id has gone quiet.
   */
  private holderOf(node: string, claimant: string, now: number): string | undefined {
    if (this.self && node === this.self.node) return claimant === this.self.peerId ? undefined : this.self.peerId
    const ownerId = this.owners.get(node)
    const owner = ownerId === undefined ? undefined : this.peers.get(ownerId)
    if (ownerId === undefined || ownerId === claimant || owner?.announcement.node !== node) return undefined
    return now - owner.heardAt <= this.freshMs || this.connected(ownerId) ? ownerId : undefined
  }

  /** `events` were handed (or are being handed) to the peer; negative: it refused them. */
  noteSent(peerId: string, events: number): void {
    this.sentSince.set(peerId, (this.sentSince.get(peerId) ?? 0) + events)
    this.credit.sent(peerId, events)
  }

  /** A batch of `events` is on its way to the peer: it counts against its room until answered. */
  noteSending(peerId: string, events: number): void {
    this.inFlight.set(peerId, (this.inFlight.get(peerId) ?? 0) + events)
    this.credit.sent(peerId, events)
  }

  /** The peer accepted a batch noted by noteSending: it holds those events now, until it announces again. */
  noteDelivered(peerId: string, events: number): void {
    this.landed(peerId, events)
    this.sentSince.set(peerId, (this.sentSince.get(peerId) ?? 0) + events)
  }

  /** A batch noted by noteSending came back (refused, too big, taken back): the peer holds none of it. */
  noteReturned(peerId: string, events: number): void {
    this.landed(peerId, events)
    this.credit.sent(peerId, -events)
  }

  private landed(peerId: string, events: number): void {
    const left = (this.inFlight.get(peerId) ?? 0) - events
    if (left > 0) this.inFlight.set(peerId, left)
    else this.inFlight.delete(peerId)
  }

  /** Events we hand the peer that its last announcement did not count: sent since, and on the way. */
  private unannounced(peerId: string): number {
    return (this.sentSince.get(peerId) ?? 0) + (this.inFlight.get(peerId) ?? 0)
  }

  /**
   * How many more events the peer takes, by our estimate: room under its high-water
   * mark as announced, less what we sent since or is on its way, and never more than
   * its credit.
   */
  room(e: PeerEntry): number {
    const a = e.announcement
    return Math.min(a.highWaterMark - a.depth - this.unannounced(a.peerId), this.credit.available(a.peerId))
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
        this.sentSince.delete(id)
        this.inFlight.delete(id)
        this.credit.forget(id)
        if (this.owners.get(entry.announcement.node) === id) this.owners.delete(entry.announcement.node)
        dropped++
      }
    }
    for (const [id, r] of this.refused) if (r.until <= this.now()) this.refused.delete(id)
    return dropped
  }

  /** Peers heard from lately whose node name is their own: the only ones offered anything. */
  fresh(): PeerEntry[] {
    this.expire()
    const now = this.now()
    return [...this.peers.values()].filter((e) => now - e.heardAt <= this.freshMs && e.conflictWith === undefined)
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
   * the handing-off bucket until it comes back. The connection also makes the peer
   * known first hand: one heard of only through relayed gossip is never offered events.
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
    return (a.depth + this.unannounced(a.peerId)) / Math.max(1, a.highWaterMark)
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
        node: a.node,
        peerId: a.peerId,
        http: e.httpUrl,
        load: {
          depth: a.depth,
          inflight: a.inflight,
          highWaterMark: a.highWaterMark,
          lowWaterMark: a.lowWaterMark,
          maxEvents: a.maxEvents,
          accepting: a.accepting,
          drainRate: a.drainRate,
        },
        pipelines: a.pipelines,
        ageMs: now - e.heardAt,
        connected: isConnected(a.peerId),
        conflict: e.conflictWith !== undefined,
        credit: this.credit.available(a.peerId),
      }
    })
  }
}

/** Peers in the order of a hash of (key, peer id), highest first: the same key, the same order. */
export function rendezvous(peers: PeerEntry[], key: string): PeerEntry[] {
  const score = (p: PeerEntry) => createHash('sha256').update(key).update('\u0000').update(p.announcement.peerId).digest().readUInt32BE(0)
  return peers
    .map((p) => ({ p, s: score(p) }))
    .sort((x, y) => y.s - x.s)
    .map((x) => x.p)
}
