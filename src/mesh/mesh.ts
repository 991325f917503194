// The mesh side of a node: a libp2p host, load gossip, the peer table, the redialer,
// the handoff protocol (both directions) and the trace lookup. The node owns the
// order: the mesh starts after the queue has recovered and stops before it closes.
import type { Connection, PeerId } from '@libp2p/interface'
import type { Ping as PingService } from '@libp2p/ping'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import { uuidv7 } from '../ids.js'
import { listensBeyondLoopback } from '../config/closed-mesh.js'
import type { MeshConfig } from '../config/schema.js'
import { BingeError, asError } from '../errors.js'
import type { HandoffDirection } from '../metrics.js'
import type { EventQueue, EventRecord, HandoffBatch } from '../queue/types.js'
import type { TraceStep, TraceStore } from '../trace.js'
import { toMultiaddr } from './addresses.js'
import type { Announcement } from './announcement.js'
import { FrameBudget } from './frame-budget.js'
import { FrameTooLargeError, maxHandoffEventBytes, request, requestFrame, serve } from './frames.js'
import { type DecodedHandoff, decodeHandoffFrame, encodeHandoffFrame } from './handoff-frame.js'
import { LoadGossip } from './gossip.js'
import {
  handoffProtocol,
  maxHandoffEvents,
  parseHandoffResponse,
  receiveHandoff,
  type HandoffRequest,
  type HandoffResponse,
} from './handoff-protocol.js'
import { splitByBytes } from './handoff-split.js'
import { loadOrCreateIdentity } from './identity.js'
import { Offloader } from './offloader.js'
import { PeerHealth, defaultStallMs } from './peer-health.js'
import { createPeerHost, type PeerHost } from './peer-host.js'
import { PeerTable, type PeerEntry, type PeerView, rendezvous } from './peer-table.js'
import { announceSpacing, confirmSpacing } from './peer-credit.js'
import { Redialer } from './redialer.js'

export const traceProtocol = '/binge/trace/1.0.0'

/** The key the example configs fall back to: fine on one machine, public everywhere else. */
export const exampleMeshKey = 'binge-example-mesh-key'

export interface MeshComponents {
  nodeId: string
  dataDir: string
  queue: EventQueue
  log: Logger
  trace: TraceStore
  highWaterMark: number
  lowWaterMark: number
  maxEvents: number
  /** http.maxBodyBytes: no event handed in may be larger than one the HTTP door takes. */
  maxEventBytes: number
  /** host:port of the HTTP API as bound. */
  httpAddress(): string
  pipelines(): string[]
  hasPipeline(name: string): boolean
  accepting(): boolean
  /**
   * A node without pipelines only relays: it keeps what it accepts durable and hands
   * all of it on, and takes no overflow from others (it could not process it).
   */
  relay: boolean
  /** Events finished here so far (for the drain rate). */
  finishedCount(): number
  /** `peer`: the node name on the other side, when known (for per-link rates). */
  handoff(direction: HandoffDirection, count: number, peer?: string): void
}

/** Most ids remembered with an unknown outcome (a client retries within seconds). */
const maxUnsure = 10_000

/**
 * The most a peer may hold from us unaccounted for, in handoff batches (peer-credit.ts):
 * what a handoff can move per confirmation (every 200-250 ms while it runs), so the
 * bound on a peer that acks and keeps nothing, and the ceiling on an honest one's rate.
 */
const creditBatches = 64
/** Credit per event a peer's announcement accounts for (PeerCredit.growth): how soon a handoff reaches `creditBatches`. */
const creditGrowth = 16

export class Mesh {
  private host?: PeerHost
  private gossip?: LoadGossip
  private redialer?: Redialer
  private offloader?: Offloader
  readonly table: PeerTable
  /** Which peers answer our handoffs: every handoff this node sends is noted here. */
  private readonly health: PeerHealth
  /** Ids whose direct handoff had an unknown outcome, and the peer that may hold them. */
  private readonly unsure = new Map<string, string>()
  private drainRate = 0
  private lastFinished = { at: Date.now(), count: 0 }

  constructor(
    private readonly config: MeshConfig,
    private readonly parts: MeshComponents,
  ) {
    const interval = config.gossipInterval
    this.table = new PeerTable(interval * 3 + 2_000, Math.max(60_000, interval * 30))
    this.health = new PeerHealth(Math.min(defaultStallMs, config.handoffTimeout / 2))
  }

  peerId(): string | undefined {
    return this.host?.peerId.toString()
  }

  addresses(): string[] {
    return this.host?.getMultiaddrs().map(String) ?? []
  }

  async start(): Promise<void> {
    const { log } = this.parts
    const privateKey = await loadOrCreateIdentity(this.parts.dataDir)
    const host = (this.host = await createPeerHost({
      privateKey,
      listen: this.config.listen,
      psk: this.config.psk,
      allowPeers: this.config.allowPeers,
    }))
    const timeout = this.config.handoffTimeout
    const frames = { budget: new FrameBudget(), log }
    await serve(
      host,
      handoffProtocol,
      timeout,
      async (decoded, connection) => {
        const { body, ...frame } = decoded as DecodedHandoff
        return receiveHandoff(
          body,
          await this.memberNode(connection),
          {
            onChecksFailed: (reason) =>
              log.warn(
                { peer: connection.remotePeer.toString(), reason },
                'A handoff batch failed the checks every event meets and was refused.',
              ),
            queue: this.parts.queue,
            highWaterMark: this.parts.highWaterMark,
            maxEventBytes: this.parts.maxEventBytes,
            accepting: () => this.parts.accepting(),
            hasPipeline: (name) => this.parts.hasPipeline(name),
            onHandedIn: (events, from) => {
              this.parts.handoff('in', events.length, from)
              const step = { detail: `from ${from}` }
              for (const e of events) this.parts.trace.add(e.id, 'handedIn', step)
              // The sender's credit for us grows when it hears we hold these: tell it soon.
              this.gossip?.soon(announceSpacing(this.config.gossipInterval))
            },
          },
          frame,
          connection.remotePeer.toString(),
        )
      },
      { ...frames, decode: decodeHandoffFrame },
    )
    // Traces name peers and event ids: only mesh members may ask.
    await serve(
      host,
      traceProtocol,
      timeout,
      async (body, connection) => {
        if ((await this.memberNode(connection)) === undefined) return { refused: 'the trace protocol answers mesh members only' }
        const id = (body as { id?: unknown })?.id
        return { node: this.parts.nodeId, steps: typeof id === 'string' ? (this.parts.trace.get(id) ?? []) : [] }
      },
      frames,
    )
    this.table.requiredPipelines = this.parts.pipelines()
    this.table.self = { node: this.parts.nodeId, peerId: host.peerId.toString() }
    this.table.credit.initial = this.config.handoffBatch
    this.table.credit.max = creditBatches * this.config.handoffBatch
    this.table.credit.growth = creditGrowth
    this.table.credit.minConfirmMs = confirmSpacing(this.config.gossipInterval)
    const redialer = (this.redialer = new Redialer(host, log, { forgetMs: this.table.expireMs }))
    for (const entry of this.config.bootstrap) redialer.addBootstrap(toMultiaddr(entry))
    this.gossip = new LoadGossip({
      host,
      table: this.table,
      intervalMs: this.config.gossipInterval,
      log,
      self: () => this.announcement(),
      onAnnouncement: (a) => redialer.learn(a.peerId, a.addrs),
    })
    this.gossip.start()
    redialer.start()
    this.offloader = new Offloader({
      queue: this.parts.queue,
      table: this.table,
      health: this.health,
      log,
      highWaterMark: this.parts.relay ? 0 : this.parts.highWaterMark,
      lowWaterMark: this.parts.relay ? 0 : this.parts.lowWaterMark,
      maxHops: this.config.maxHops,
      batchSize: this.config.handoffBatch,
      maxInFlight: this.config.handoffConcurrency,
      unreachableMs: this.config.unreachablePeerTimeout,
      send: (peer, batch) => this.send(peer, batch, 'overflow'),
      ping: (peer) => this.ping(peer),
      onHandedOff: (batch, peerNode) => {
        this.parts.handoff('out', batch.events.length, peerNode)
        const step = { detail: `to ${peerNode}`, peer: batch.peer }
        for (const e of batch.events) this.parts.trace.add(e.id, 'handedOff', step)
      },
      onTakenBack: (batch) => {
        this.parts.handoff('takenBack', batch.events.length)
        const step = { detail: `peer ${batch.peer} unreachable` }
        for (const e of batch.events) this.parts.trace.add(e.id, 'takenBack', step)
      },
    })
    await this.offloader.start()
    log.info({ peerId: host.peerId.toString(), addrs: this.addresses(), bootstrap: this.config.bootstrap }, 'The node joined the mesh.')
    this.warnIfOpen()
  }

  /** Say so at every start when the mesh is open to more than its members should be. */
  private warnIfOpen(): void {
    const { listen, psk, allowPeers, insecure } = this.config
    if (!listensBeyondLoopback(listen)) return
    if (insecure && psk === '' && allowPeers.length === 0) {
      this.parts.log.warn(
        { listen },
        'The mesh is open (mesh.insecure: true): any machine that reaches its port can join, gossip and hand this node events.',
      )
    } else if (psk.trim() === exampleMeshKey) {
      this.parts.log.warn(
        { listen },
        'The mesh uses the example key from mesh-configs, which anyone can read: set BINGE_MESH_KEY to a key from `binge keygen`.',
      )
    }
  }

  async stop(): Promise<void> {
    await this.offloader?.stop()
    this.gossip?.stop()
    this.redialer?.stop()
    await this.host?.stop()
    this.host = undefined
  }

  peers(): PeerView[] {
    const host = this.host
    return this.table.view((peerId) => (host ? host.getConnections(peerIdFromString(peerId)).length > 0 : false))
  }

  /** The peer a client refused here could try instead: the least loaded one heard from lately. */
  suggestPeer(): { node: string; http: string } | undefined {
    const best = this.table.fresh().sort((a, b) => this.table.loadOf(a) - this.table.loadOf(b))[0]
    return best ? { node: best.announcement.node, http: best.httpUrl } : undefined
  }

  knowsPipeline(name: string): boolean {
    return this.table.runners(name).length > 0
  }

  /**
   * Hand events that are not on this node's disk (an ingest over the hard cap, or for a
   * pipeline this node lacks) to a peer, in batches that each fit one frame, trying up
   * to three peers for each. A route tries the runners in an order fixed by the first
   * event's id (rendezvous hashing), so a client's retry of the same ids reaches the
   * same peer, whose dedupe index drops them, as long as the same peers run the
   * pipeline; an overflow goes by load, to peers that answer us. An unknown outcome is
   * resent once to the same peer under the same handoff id (its dedupe makes that
   * safe); if that fails too it throws, and no other peer is tried, since that one may
   * hold them. It throws too when some batches were taken and a later one was not: the
   * retry goes first to the peers that hold the taken ones. Resolves with the peers'
   * node ids and the ids they had already, or undefined if none would take the events.
   * A route with an event too big for any frame is refused (413); an overflow of one
   * resolves undefined (it can only be stored here, once there is room).
   */
  async handOffDirect(events: EventRecord[], kind: 'overflow' | 'route', pipeline?: string): Promise<DirectHandoff | undefined> {
    const split = splitByBytes(events, maxHandoffEventBytes, maxHandoffEvents)
    if ('tooBig' in split) {
      if (kind === 'overflow') return undefined
      const { index, bytes } = split.tooBig
      throw new BingeError(
        'BINGE_PAYLOAD_TOO_LARGE',
        `event ${index} is ${bytes} bytes as JSON, more than a mesh handoff carries (${maxHandoffEventBytes}), so it cannot reach a node that runs the pipeline "${pipeline ?? ''}"; send it to such a node directly`,
      )
    }
    const order = kind === 'route' ? rendezvous(this.table.runners(pipeline ?? ''), events[0]?.id ?? '') : undefined
    const taken: Array<{ events: EventRecord[]; peer: string; node: string }> = []
    const duplicateIds: string[] = []
    for (const batch of split.batches) {
      let done: BatchHandoff | undefined
      try {
        done = await this.handOffBatch(batch, kind, order)
      } catch (err) {
        for (const t of taken) this.rememberUnsure(t.events, t.peer)
        throw err
      }
      if (!done) {
        if (taken.length === 0) return undefined
        for (const t of taken) this.rememberUnsure(t.events, t.peer)
        const handed = taken.reduce((n, t) => n + t.events.length, 0)
        throw new Error(
          `${handed} of the ${events.length} events were handed to ${[...new Set(taken.map((t) => t.node))].join(', ')} and no peer would take the rest`,
        )
      }
      taken.push({ events: batch, peer: done.peer, node: done.node })
      duplicateIds.push(...done.duplicateIds)
    }
    return { node: [...new Set(taken.map((t) => t.node))].join(', '), duplicateIds }
  }

  /** One frame's worth of handOffDirect: up to three peers, one resend after an unknown outcome. */
  private async handOffBatch(
    events: EventRecord[],
    kind: 'overflow' | 'route',
    order: PeerEntry[] | undefined,
  ): Promise<BatchHandoff | undefined> {
    // A retry of ids whose handoff had an unknown outcome goes first where they may be.
    const unsure = this.unsure.get(events[0]?.id ?? '')
    const sticky = unsure === undefined ? undefined : this.table.get(unsure)
    const tried = new Set<string>()
    const untried = (peers: PeerEntry[]) => peers.filter((p) => !tried.has(p.announcement.peerId))
    const next = (): PeerEntry | undefined => {
      if (tried.size === 0 && sticky) return sticky
      if (order) return untried(order)[0]
      return this.table.choose(untried(this.table.withRoom()).filter((p) => this.health.healthy(p.announcement.peerId)))
    }
    const handoffId = uuidv7()
    // Its answer, or its failure, tells PeerHealth whether the peer answers (as the offloader's do).
    const send = (batch: HandoffBatch) =>
      this.health.track(
        batch.peer,
        () => this.send(batch.peer, batch, kind),
        (err) => err instanceof FrameTooLargeError,
      )
    for (let i = 0; i < 3; i++) {
      const peer = next()
      if (!peer) break
      tried.add(peer.announcement.peerId)
      const batch: HandoffBatch = { handoffId, peer: peer.announcement.peerId, takenAt: Date.now(), events }
      let answer: HandoffResponse
      let resent = false
      try {
        answer = await send(batch)
      } catch (err) {
        this.parts.log.warn(
          { peer: peer.announcement.node, err: asError(err).message },
          'A direct handoff had an unknown outcome; resending it once to the same peer.',
        )
        try {
          answer = await send(batch)
        } catch (again) {
          this.rememberUnsure(events, batch.peer)
          throw again
        }
        resent = true
      }
      if (answer.status === 'accepted') {
        for (const e of events) this.unsure.delete(e.id)
        if (kind === 'overflow') this.table.noteSent(batch.peer, events.length)
        this.parts.handoff('out', events.length, peer.announcement.node)
        const step = { detail: `to ${peer.announcement.node}`, peer: batch.peer }
        for (const e of events) this.parts.trace.add(e.id, 'handedOff', step)
        // After a resend the peer has the ids from our own first attempt: not the client's duplicates.
        return { node: peer.announcement.node, peer: batch.peer, duplicateIds: resent ? [] : (answer.duplicateIds ?? []) }
      }
      this.table.markRefused(batch.peer, 2_000)
    }
    return undefined
  }

  /**
   * The node name the peer on `connection` announced: who is on the other end is the
   * peer id the connection proved, never what a frame says. A peer that connected just
   * now (a restart, a new node) may not have announced itself yet: it is given a couple
   * of gossip intervals, so its resends are not refused for being early. A peer that
   * announced a name another peer id holds (a conflict) is no member under it: it may
   * not hand in events or read traces as that node.
   */
  private async memberNode(connection: Connection): Promise<string | undefined> {
    const peerId = connection.remotePeer.toString()
    const deadline = Date.now() + Math.min(2 * this.config.gossipInterval + 1_000, this.config.handoffTimeout / 2)
    for (;;) {
      const entry = this.table.get(peerId)
      if (entry?.conflictWith !== undefined) return undefined
      const node = entry?.announcement.node
      if (node !== undefined || Date.now() >= deadline) return node
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Remember where ids with an unknown outcome may be, for the client's retry (bounded: oldest forgotten). */
  private rememberUnsure(events: EventRecord[], peer: string): void {
    for (const e of events) {
      this.unsure.delete(e.id)
      this.unsure.set(e.id, peer)
    }
    for (const id of this.unsure.keys()) {
      if (this.unsure.size <= maxUnsure) break
      this.unsure.delete(id)
    }
  }

  /** The trace of `id` on the peers this node handed it to, followed up to `depth` hops. */
  async remoteTrace(steps: TraceStep[], id: string, depth = 3): Promise<TraceStep[]> {
    const host = this.host
    if (!host || depth <= 0) return []
    const peers = [...new Set(steps.filter((s) => s.state === 'handedOff' && s.peer).map((s) => s.peer!))]
    const found: TraceStep[] = []
    for (const peer of peers) {
      try {
        const answer = (await request(host, peerIdFromString(peer), traceProtocol, { id }, 3_000)) as { steps?: TraceStep[] }
        const remote = Array.isArray(answer.steps) ? answer.steps : []
        found.push(...remote, ...(await this.remoteTrace(remote, id, depth - 1)))
      } catch (err) {
        found.push({ state: 'unreachable', node: peer, at: new Date().toISOString(), detail: asError(err).message })
      }
    }
    return found
  }

  private async send(peer: string, batch: HandoffBatch, kind: HandoffRequest['kind']): Promise<HandoffResponse> {
    const host = this.host
    if (!host) throw new Error('the mesh is stopped')
    const frame = encodeHandoffFrame({ handoffId: batch.handoffId, kind, from: this.parts.nodeId }, batch.events, batch.texts)
    const target: PeerId = peerIdFromString(peer)
    return parseHandoffResponse(await requestFrame(host, target, handoffProtocol, frame, this.config.handoffTimeout))
  }

  /** A libp2p ping of `peer`: on our connection to it, so it says whether the peer itself answers. */
  private async ping(peer: string): Promise<boolean> {
    const host = this.host
    if (!host) return false
    try {
      await (host.services.ping as PingService).ping(peerIdFromString(peer), {
        signal: AbortSignal.timeout(Math.min(2_000, this.config.handoffTimeout)),
      })
      return true
    } catch {
      return false
    }
  }

  private announcement(): Announcement {
    const now = Date.now()
    const finished = this.parts.finishedCount()
    const seconds = (now - this.lastFinished.at) / 1000
    if (seconds > 0) this.drainRate = 0.7 * this.drainRate + 0.3 * ((finished - this.lastFinished.count) / seconds)
    this.lastFinished = { at: now, count: finished }
    const depth = this.parts.queue.depth()
    return {
      v: 1,
      node: this.parts.nodeId,
      peerId: this.host!.peerId.toString(),
      http: this.parts.httpAddress(),
      addrs: this.addresses(),
      depth: depth.unprocessed,
      inflight: depth.inflight,
      highWaterMark: this.parts.highWaterMark,
      lowWaterMark: this.parts.lowWaterMark,
      maxEvents: this.parts.maxEvents,
      accepting:
        !this.parts.relay &&
        this.parts.accepting() &&
        depth.unprocessed + depth.inflight < this.parts.maxEvents &&
        !this.parts.queue.diskStatus()?.belowWatermark,
      drainRate: Math.round(this.drainRate * 10) / 10,
      pipelines: this.parts.pipelines(),
      sentAt: now,
    }
  }
}

export interface DirectHandoff {
  /** The node id of the peer that took the events (of each, comma-separated, when several did). */
  node: string
  /** Ids the peer had accepted before: duplicates, not queued again. */
  duplicateIds: string[]
}

interface BatchHandoff {
  node: string
  peer: string
  duplicateIds: string[]
}
