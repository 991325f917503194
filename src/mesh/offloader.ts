// The background offloader: past the high-water mark it hands the newest unprocessed
// events, in batches, to peers with room, until the node is at its low-water mark.
//
// Design constraints (exactly once across a crash of either side):
// - A batch is moved durably into the queue's handing-off bucket, with its peer and
//   handoff id, before a byte is sent; only an `accepted` answer deletes it.
// - Any other outcome but `refused` is unknown: the same batch (same handoff id) is
//   resent to the same peer, whose dedupe makes that safe, and it is never processed
//   here meanwhile. Batches found in the bucket at start are resent the same way.
// - A `refused` answer proves only that the attempt it answers took nothing. If an
//   earlier attempt of the batch had an unknown outcome (or the batch was found in the
//   bucket at start), that attempt may still land on the peer after the refusal (a
//   stalled or restarting peer reads the old frame late, maybe on another connection),
//   so the batch stays promised and is resent later. Only a batch whose every attempt
//   was answered goes back to unprocessed on `refused`.
// - A peer unreachable for longer than `unreachableMs` gets its batches taken back and
//   processed here: a possible duplicate is better than a loss (counted in metrics).
// - Whether a peer is there is judged by its own answers to us (PeerHealth), not by
//   gossip: a peer that stopped answering gets no new batch and at most one slot, its
//   pending resends going one at a time, so the other slots serve peers that answer.
// - A batch holds at most `maxHandoffEventBytes` of events, so it fits one frame; an
//   event bigger than that is never taken, and is processed here.
import type { Logger } from 'pino'
import { uuidv7 } from '../ids.js'
import { asError } from '../errors.js'
import type { EventQueue, HandoffBatch } from '../queue/types.js'
import { FrameTooLargeError, maxHandoffEventBytes } from './frames.js'
import type { HandoffResponse } from './handoff-protocol.js'
import { PeerHealth } from './peer-health.js'
import type { PeerTable } from './peer-table.js'
import { backoffDelay } from '../util/backoff.js'

export interface OffloaderOptions {
  queue: EventQueue
  table: PeerTable
  /** Shared with the other senders of handoffs (the mesh's direct ones); its own if absent. */
  health?: PeerHealth
  log: Logger
  highWaterMark: number
  lowWaterMark: number
  maxHops: number
  batchSize: number
  maxInFlight: number
  unreachableMs: number
  /** Send one batch; resolves with the peer's answer, throws when the outcome is unknown. */
  send(peer: string, batch: HandoffBatch): Promise<HandoffResponse>
  /** Does the peer answer a ping on our connection to it now? (Absent: only resends tell.) */
  ping?(peer: string): Promise<boolean>
  onHandedOff(batch: HandoffBatch, peerNode: string): void
  onTakenBack(batch: HandoffBatch): void
}

interface Outstanding {
  batch: HandoffBatch
  failures: number
  nextAttempt: number
  sending: boolean
  /** An attempt may have reached the peer without our hearing the answer: `refused` is not final. */
  uncertain: boolean
  /** When the last attempt failed (0: none did). */
  failedAt: number
}

const tickMs = 50
/** The longest a refusing peer is passed over; its next announcement ends the pause sooner. */
const refusedPauseMs = 2_000
/** Longest wait before resending to a peer that answered a ping after a failed attempt. */
const aliveRetryMs = 500
/** How often a peer with failed batches is pinged, to resend soon once it is back. */
const pingEveryMs = 500

export class Offloader {
  private readonly outstanding = new Map<string, Outstanding>()
  private timer?: NodeJS.Timeout
  private active = false
  private taking = false
  private stopped = true
  private readonly sends = new Set<Promise<void>>()
  /** Peers being pinged now, and when each was last pinged. */
  private readonly pings = new Map<string, number>()

  private readonly health: PeerHealth

  constructor(private readonly options: OffloaderOptions) {
    this.health = options.health ?? new PeerHealth()
  }

  async start(): Promise<void> {
    this.stopped = false
    for (const batch of await this.options.queue.pendingHandoffs()) {
      // The last process may have sent it: the peer may hold it, or still be reading it.
      this.outstanding.set(batch.handoffId, { batch, failures: 0, nextAttempt: 0, sending: false, uncertain: true, failedAt: 0 })
      this.options.table.noteSending(batch.peer, batch.events.length)
    }
    if (this.outstanding.size > 0)
      this.options.log.info({ batches: this.outstanding.size }, 'Resending handoff batches whose outcome was unknown at the last stop.')
    this.timer = setInterval(() => void this.tick(), tickMs)
    this.timer.unref()
  }

  /** Stop sending; unresolved batches stay in the bucket and are resent at the next start. */
  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await Promise.allSettled([...this.sends])
  }

  /** Slots in use: a batch being sent holds one, but all those to a suspect peer hold one together. */
  inFlight(): number {
    const perPeer = this.sendingPerPeer()
    let slots = 0
    for (const [peer, n] of perPeer) slots += this.health.healthy(peer) ? n : Math.min(n, 1)
    return slots
  }

  private sendingPerPeer(): Map<string, number> {
    const perPeer = new Map<string, number>()
    for (const o of this.outstanding.values()) if (o.sending) perPeer.set(o.batch.peer, (perPeer.get(o.batch.peer) ?? 0) + 1)
    return perPeer
  }

  private async tick(): Promise<void> {
    if (this.stopped) return
    const now = Date.now()
    const { health } = this
    const sending = this.sendingPerPeer()
    for (const o of this.outstanding.values()) {
      const peer = o.batch.peer
      // A peer that answered us since the last failure is back (from a restart or a
      // freeze): resend soon, not at the end of a backoff that grew while it was away.
      if (o.failedAt > 0 && health.aliveAt(peer) > o.failedAt) {
        o.nextAttempt = Math.min(o.nextAttempt, o.failedAt + aliveRetryMs)
      } else if (o.failedAt > 0 && !sending.has(peer)) {
        this.ping(peer, now)
      }
      if (o.sending || now < o.nextAttempt || this.inFlight() >= this.options.maxInFlight) continue
      // A suspect peer gets one resend at a time: its answer (or not) tells for the rest.
      if (!health.healthy(peer) && (sending.get(peer) ?? 0) > 0) continue
      sending.set(peer, (sending.get(peer) ?? 0) + 1)
      this.launch(o)
    }
    if (this.taking) return
    this.taking = true
    try {
      await this.offload()
    } catch (err) {
      this.options.log.error({ err: asError(err).message }, 'Taking events for a handoff failed; the offloader tries again shortly.')
    } finally {
      this.taking = false
    }
  }

  /** Ping `peer` unless that is under way or was done lately; an answer marks it alive. */
  private ping(peer: string, now: number): void {
    const last = this.pings.get(peer)
    if (this.options.ping === undefined || (last !== undefined && (last < 0 || now - last < pingEveryMs))) return
    this.pings.set(peer, -1)
    // Not awaited by stop(): a ping to a frozen peer would hold it up to its timeout,
    // and stopping the host ends it anyway.
    void this.options
      .ping(peer)
      .then(
        (alive) => {
          if (alive) this.health.pinged(peer)
        },
        () => {},
      )
      .finally(() => this.pings.set(peer, Date.now()))
  }

  private async offload(): Promise<void> {
    const { queue, table } = this.options
    const unprocessed = () => queue.depth().unprocessed
    if (!this.active && unprocessed() > this.options.highWaterMark) this.active = true
    while (this.active && !this.stopped && this.inFlight() < this.options.maxInFlight) {
      const excess = unprocessed() - this.options.lowWaterMark
      if (excess <= 0) {
        this.active = false
        return
      }
      const peer = table.choose(table.withRoom().filter((p) => this.health.ready(p.announcement.peerId)))
      if (!peer) return
      // No more than the peer has room for, by its last announcement and what we have
      // sent it since: past that it would refuse (and idle once it drains).
      const batch = await queue.takeForHandoff(Math.min(this.options.batchSize, excess, table.room(peer)), {
        handoffId: uuidv7(),
        peer: peer.announcement.peerId,
        maxHops: this.options.maxHops,
        // Never back to the node that first accepted it: its dedupe index would take the
        // event for a duplicate, ack it and drop it, and we would delete our copy.
        excludeOrigin: peer.announcement.node,
        maxBytes: maxHandoffEventBytes,
      })
      if (!batch) {
        // Everything left has used up its hops (or is too big for a frame): process it here.
        this.active = false
        return
      }
      table.noteSending(batch.peer, batch.events.length)
      const o: Outstanding = { batch, failures: 0, nextAttempt: 0, sending: false, uncertain: false, failedAt: 0 }
      this.outstanding.set(batch.handoffId, o)
      this.launch(o)
    }
  }

  private launch(o: Outstanding): void {
    o.sending = true
    const p = this.attempt(o)
      .catch((err) => {
        // A store failure while settling: the batch stays in the bucket and is resent later.
        o.nextAttempt = Date.now() + 1_000
        this.options.log.error(
          { handoffId: o.batch.handoffId, err: asError(err).message },
          'Settling a handoff batch failed; it stays in the handing-off bucket.',
        )
      })
      .finally(() => {
        o.sending = false
        this.sends.delete(p)
        // A slot is free: fill it now rather than at the next tick.
        if (!this.stopped) void this.tick()
      })
    this.sends.add(p)
  }

  private async attempt(o: Outstanding): Promise<void> {
    const { batch } = o
    const peerNode = this.options.table.get(batch.peer)?.announcement.node ?? batch.peer
    let response: HandoffResponse
    try {
      response = await this.health.track(
        batch.peer,
        () => this.options.send(batch.peer, batch),
        (err) => err instanceof FrameTooLargeError,
      )
    } catch (err) {
      if (err instanceof FrameTooLargeError) await this.giveBack(o, peerNode, err)
      else await this.unknown(o, peerNode, err)
      return
    }
    if (response.status === 'accepted') {
      await this.options.queue.completeHandoff(batch.handoffId)
      this.outstanding.delete(batch.handoffId)
      this.options.table.noteDelivered(batch.peer, batch.events.length)
      this.options.onHandedOff(batch, peerNode)
      if (response.duplicates > 0) {
        this.options.log.info(
          { peer: peerNode, handoffId: batch.handoffId, duplicates: response.duplicates, accepted: response.accepted },
          'A resent handoff batch was already on the peer, which dropped the copies.',
        )
      }
      return
    }
    this.options.table.markRefused(batch.peer, refusedPauseMs)
    if (o.uncertain) {
      // An earlier attempt may still land there, so the batch stays promised to this
      // peer. It is alive and said no (over its mark, say, after a restart that brought
      // every resend at once): offer it again shortly rather than after a long backoff.
      if (await this.takeBackIfOverdue(o, peerNode)) return
      o.failedAt = 0
      o.nextAttempt = Date.now() + refusedPauseMs
      this.options.log.debug(
        { peer: peerNode, handoffId: batch.handoffId, reason: response.reason },
        'A peer refused a resend; the batch stays promised to it and is offered again shortly.',
      )
      return
    }
    await this.options.queue.returnHandoff(batch.handoffId)
    this.outstanding.delete(batch.handoffId)
    this.options.table.noteReturned(batch.peer, batch.events.length)
    this.options.log.debug(
      { peer: peerNode, reason: response.reason, events: batch.events.length },
      'A peer refused a handoff; the events stay here.',
    )
  }

  /**
   * A batch too big for a frame (taken by a version without the byte bound): no attempt
   * of it can have reached a peer, since no peer reads such a frame, so its events are
   * simply free again, to be taken in smaller batches or processed here.
   */
  private async giveBack(o: Outstanding, peerNode: string, err: FrameTooLargeError): Promise<void> {
    const { batch } = o
    await this.options.queue.returnHandoff(batch.handoffId)
    this.outstanding.delete(batch.handoffId)
    this.options.table.noteReturned(batch.peer, batch.events.length)
    this.options.log.warn(
      { peer: peerNode, handoffId: batch.handoffId, events: batch.events.length, err: err.message },
      'A handoff batch too big for one frame was given back, to be split or processed here.',
    )
  }

  /** Past `unreachableMs` since the batch was taken: take it back to process here. */
  private async takeBackIfOverdue(o: Outstanding, peerNode: string): Promise<boolean> {
    const { batch } = o
    if (Date.now() - batch.takenAt <= this.options.unreachableMs) return false
    await this.options.queue.returnHandoff(batch.handoffId)
    this.outstanding.delete(batch.handoffId)
    this.options.table.noteReturned(batch.peer, batch.events.length)
    this.options.onTakenBack(batch)
    this.options.log.warn(
      { peer: peerNode, handoffId: batch.handoffId, events: batch.events.length },
      'A peer stayed unreachable past the limit, so its handoff batch was taken back to be processed here; the peer may process some of it too.',
    )
    return true
  }

  private async unknown(o: Outstanding, peerNode: string, err: unknown): Promise<void> {
    const { batch } = o
    if (await this.takeBackIfOverdue(o, peerNode)) return
    o.uncertain = true
    o.failedAt = Date.now()
    o.failures++
    o.nextAttempt = Date.now() + backoffDelay(o.failures + 1, 200, 10_000)
    const fields = { peer: peerNode, handoffId: batch.handoffId, failures: o.failures, err: asError(err).message }
    if (o.failures === 1) this.options.log.warn(fields, 'A handoff had an unknown outcome; the same batch will be resent to the same peer.')
    else this.options.log.debug(fields, 'A handoff resend failed again.')
  }
}
