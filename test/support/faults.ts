// Fault injection for the mesh handoff: a small mesh of real nodes (one sender that
// overflows, receivers with room), a local webhook that every node's output POSTs to
// (it records which node output which event, and slows the sender down on demand),
// the faults themselves (kill -9 of either side mid-handoff, SIGSTOP of a receiver),
// and the exactly-once check across all outputs. Shared by test/mesh/faults.test.ts
// and scripts/chaos-mesh.mjs, so the suite and the long loop check the same things.
// Invariants: every child goes through NodeProcess (killAllNodes kills it by pid);
// nothing waits a fixed time for something to happen, it polls with a deadline (the
// one fixed duration is how long a SIGSTOP lasts, which is the fault itself).

import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { Level } from 'level'
import * as keys from '../../src/queue/durable/keys.js'
import {
  NodeProcess,
  getJson,
  makeTempDir,
  startIngestClients,
  waitFor,
  writeConfig,
  type IngestClients,
  type IngestLedger,
  type LogLine,
} from './node-process.js'

/** Events one worker dequeues at once and holds in flight until its output answered (src/pipeline/workers.ts). */
export const WORKER_BATCH = 32

/**
 * Ask the OS for `n` free ports on 127.0.0.1 (bind port 0, read it, close), to reuse
 * across restarts. All are held open until all are known, so no two are the same.
 */
export async function reservePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer()
          server.once('error', reject)
          server.listen(0, '127.0.0.1', () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

// ---------------------------------------------------------------------------------
// The webhook every node outputs to

export interface HookRecord {
  /** The ingest client's payload id (`data.cid`). */
  cid: string
  /** The node whose output POSTed it (the envelope's `node`). */
  node: string
  /** When the hook read it (ms since the epoch, this process's clock). */
  at: number
}

/**
 * An HTTP endpoint standing in for a remote webhook: it records each envelope of each
 * POST as it arrives (before answering: a node killed while waiting for the answer has
 * output the events, and will output them again after its restart), then answers 200
 * after the delay set for the posting node. A delay is how a test slows a node's
 * processing down so that it overflows.
 */
export class HookServer {
  readonly records: HookRecord[] = []
  private readonly delays = new Map<string, number>()
  private readonly timers = new Set<NodeJS.Timeout>()

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(): Promise<HookServer> {
    const server = http.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    const hook = new HookServer(server, `http://127.0.0.1:${port}/hook`)
    server.on('request', (req, res) => hook.handle(req, res))
    return hook
  }

  setDelay(node: string, ms: number): void {
    this.delays.set(node, ms)
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('error', () => undefined)
    res.on('error', () => undefined)
    req.on('end', () => {
      let node = ''
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<{ node?: string; id?: string; data?: { cid?: unknown } }>
        const at = Date.now()
        for (const e of body) {
          node = String(e.node)
          this.records.push({ cid: typeof e.data?.cid === 'string' ? e.data.cid : String(e.id), node, at })
        }
      } catch {
        res.writeHead(400).end('{"error":"bad json"}')
        return
      }
      const answer = () => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      }
      const delay = this.delays.get(node) ?? 0
      if (delay <= 0) return answer()
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        answer()
      }, delay)
      this.timers.add(timer)
    })
  }
}

// ---------------------------------------------------------------------------------
// Nodes on fixed ports, so a restarted node is found where its peers last saw it

export interface FaultStats {
  node: string
  phase: string
  queue: { unprocessed: number; inflight: number; handingOff: number; deadletter: number }
  counters: Record<string, number>
  peers: Array<{ node: string; peerId: string; ageMs: number; connected: boolean; load: { depth: number; accepting: boolean } }>
}

export interface FaultNodeSpec {
  id: string
  workers: number
  /**
   * queue.maxEvents (default 100,000). Set just above the high-water mark (200), the
   * node is at its hard cap while it overflows, so ingest hands whole requests to peers
   * directly, and a fault on that peer mid-request answers the client 503
   * BINGE_OUTCOME_UNKNOWN: the peer may hold the events (the ledger counts them unknown).
   */
  maxEvents?: number
}

export class FaultNode {
  /** Every process this node has been, oldest first; the last is the current one. */
  readonly lives: NodeProcess[] = []
  peerId?: string

  constructor(
    readonly spec: FaultNodeSpec,
    readonly dataDir: string,
    readonly configFile: string,
    readonly httpPort: number,
  ) {}

  get id(): string {
    return this.spec.id
  }

  get proc(): NodeProcess | undefined {
    const p = this.lives.at(-1)
    return p?.alive ? p : undefined
  }

  get url(): string | undefined {
    return this.proc?.url
  }

  /** Spawn the node (again) and wait until it is ready and has joined the mesh. */
  async start(): Promise<void> {
    const proc = await NodeProcess.start(this.configFile, { label: this.id })
    this.lives.push(proc)
    const joined = await proc.waitForLog((l) => l.msg === 'The node joined the mesh.')
    this.peerId = String(joined.peerId)
  }

  async stats(): Promise<FaultStats> {
    const url = this.url
    if (url === undefined) throw new Error(`node ${this.id} is not running`)
    return getJson<FaultStats>(`${url}/stats`)
  }

  async kill9(): Promise<void> {
    await this.proc?.kill('SIGKILL')
  }

  /** SIGSTOP / SIGCONT through the child handle (never a reused pid). */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    const proc = this.proc
    if (!proc) throw new Error(`node ${this.id} is not running`)
    proc.child.kill(sig)
  }

  /** Log lines of the current process from index `from` on that match. */
  logsSince(from: number, match: (l: LogLine) => boolean): LogLine[] {
    return (this.proc?.logs ?? []).slice(from).filter(match)
  }
}

export function nodeConfig(
  spec: FaultNodeSpec,
  dataDir: string,
  httpPort: number,
  meshPort: number,
  peerPorts: number[],
  hookUrl: string,
): Record<string, unknown> {
  return {
    node: { id: spec.id, dataDir },
    http: { listen: `127.0.0.1:${httpPort}` },
    queue: { highWaterMark: 200, lowWaterMark: 50, maxEvents: spec.maxEvents ?? 100_000 },
    workers: spec.workers,
    log: { level: 'info' },
    mesh: {
      listen: `/ip4/127.0.0.1/tcp/${meshPort}`,
      bootstrap: peerPorts.map((p) => `127.0.0.1:${p}`),
      gossipInterval: '250ms',
      handoffTimeout: '2s',
      unreachablePeerTimeout: '10m',
    },
    pipelines: {
      p: {
        // 30 s: longer than a SIGSTOP, so a stopped node's pending POST does not time
        // out and get sent again (that would be an output duplicate, not a handoff one).
        outputs: [{ http: { url: hookUrl, timeout: '30s' } }],
        onFail: { retry: { attempts: 20, backoff: '50ms', maxBackoff: '1s' } },
      },
    },
  }
}

// ---------------------------------------------------------------------------------
// What a kill -9 leaves in a sender's handing-off bucket

export interface PendingBatch {
  handoffId: string
  /** Peer id the batch is promised to. */
  peer: string
  cids: string[]
}

/**
 * Read the handing-off bucket of a stopped node's store (its process must be gone: the
 * store is locked while it runs). Read only; the layout is the queue's own (src/queue/durable/keys.ts).
 */
export async function readHandingOff(dataDir: string): Promise<PendingBatch[]> {
  const db = new Level<string, string>(path.join(dataDir, 'queue'), { valueEncoding: 'utf8' })
  await db.open()
  const batches = new Map<string, PendingBatch>()
  try {
    for await (const [dbKey, value] of db.iterator(keys.ranges.handingOff)) {
      const { handoffId, queueKey } = keys.parseHandoffKey(dbKey)
      const batch = batches.get(handoffId) ?? { handoffId, peer: '', cids: [] }
      batches.set(handoffId, batch)
      if (queueKey === '') batch.peer = (JSON.parse(value) as { peer: string }).peer
      else {
        const record = JSON.parse(value) as { id: string; data?: { cid?: unknown } }
        batch.cids.push(typeof record.data?.cid === 'string' ? record.data.cid : record.id)
      }
    }
  } finally {
    await db.close()
  }
  return [...batches.values()]
}

// ---------------------------------------------------------------------------------
// The exactly-once check

/** A node was gone (kill -9 until its restart was spawned) or frozen (SIGSTOP until SIGCONT). */
export interface Disruption {
  node: string
  kind: 'kill' | 'stop'
  at: number
  resumedAt: number
  workers: number
}

export interface DeliveryCheck {
  acked: number
  /** Acknowledged ids no output ever received. */
  lost: string[]
  /** Output ids that were never sent, or were refused: must be none. */
  phantoms: string[]
  /** Ids output by two or more different nodes: only a handoff can do that. */
  handoffDuplicates: Array<{ cid: string; nodes: string[] }>
  /** Same-node extra copies explained by a disruption of that node (at-least-once outputs). */
  reoutputs: number
  /** Same-node extra copies with no disruption of that node between them: a handoff (or queue) bug. */
  unexplained: Array<{ cid: string; node: string }>
  /**
   * Events found in a killed sender's handing-off bucket that the sender output itself
   * after its restart, or that no node output (filled in by the sender-kill rounds).
   * Whether the peer they were promised to output them is not checked: a peer pushed
   * over its own high-water mark by the resends may hand them on one more hop.
   */
  misrouted: Array<{ cid: string; promisedTo: string; outputBy: string[] }>
  /** Disruptions followed by more re-outputs than the node could have had in flight. */
  overBound: Array<{ node: string; kind: string; at: number; count: number; bound: number }>
}

/**
 * Every acknowledged id must come out of some output, and no id may come out of two
 * nodes: a handoff moves an event from one node's disk to another's, so an id output
 * by two nodes was processed by both, which is exactly the duplicate the handoff must
 * never make.
 *
 * The same node outputting an id twice is allowed only as the at-least-once of
 * outputs: a node killed (or frozen past its output timeout) after its output POSTed
 * a batch but before it acked the batch in its queue outputs that batch again after it
 * restarts. So each such pair of copies must straddle a disruption of that node (the
 * first copy read before the node came back, the second after it went away), and the
 * copies attributed to one disruption are bounded by what the node could have had in
 * flight then: each of its `workers` holds at most one batch of WORKER_BATCH events,
 * acked only once the output answered for all of them. A handoff bug that enqueued a
 * batch twice on one node would either show copies with no disruption between them
 * or exceed that bound. (The hook always answers 200 well within the output timeout,
 * so an output retry, the other source of same-node copies, never happens here.)
 */
export function checkDelivery(ledger: IngestLedger, records: HookRecord[], disruptions: Disruption[]): DeliveryCheck {
  const byCid = new Map<string, HookRecord[]>()
  for (const r of records) {
    const list = byCid.get(r.cid)
    if (list) list.push(r)
    else byCid.set(r.cid, [r])
  }
  const check: DeliveryCheck = {
    acked: ledger.acked.size,
    lost: [...ledger.acked].filter((cid) => !byCid.has(cid)),
    phantoms: [],
    handoffDuplicates: [],
    reoutputs: 0,
    unexplained: [],
    misrouted: [],
    overBound: [],
  }
  const attributed = new Map<Disruption, number>()
  for (const [cid, copies] of byCid) {
    if (!ledger.acked.has(cid) && !ledger.unknown.has(cid)) check.phantoms.push(cid)
    if (copies.length === 1) continue
    const nodes = [...new Set(copies.map((c) => c.node))]
    if (nodes.length > 1) check.handoffDuplicates.push({ cid, nodes })
    for (const node of nodes) {
      const mine = copies.filter((c) => c.node === node).sort((x, y) => x.at - y.at)
      for (let i = 1; i < mine.length; i++) {
        const first = mine[i - 1]!.at
        const again = mine[i]!.at
        const d = disruptions.filter((x) => x.node === node && first <= x.resumedAt && again >= x.at).sort((x, y) => x.at - y.at)[0]
        if (!d) {
          check.unexplained.push({ cid, node })
          continue
        }
        check.reoutputs++
        attributed.set(d, (attributed.get(d) ?? 0) + 1)
      }
    }
  }
  for (const [d, count] of attributed) {
    const bound = d.workers * WORKER_BATCH
    if (count > bound) check.overBound.push({ node: d.node, kind: d.kind, at: d.at, count, bound })
  }
  return check
}

/** The figures of a check as one line, and whether it passes. */
export function summarize(check: DeliveryCheck): { ok: boolean; line: string } {
  const ok =
    check.lost.length === 0 &&
    check.phantoms.length === 0 &&
    check.handoffDuplicates.length === 0 &&
    check.unexplained.length === 0 &&
    check.overBound.length === 0 &&
    check.misrouted.length === 0
  const line =
    `acked ${check.acked}, lost ${check.lost.length}, handoff duplicates ${check.handoffDuplicates.length}, ` +
    `unexplained same-node duplicates ${check.unexplained.length}, re-outputs after kills ${check.reoutputs}` +
    `${check.misrouted.length > 0 ? `, promised to a peer but output by the sender or nowhere ${check.misrouted.length}` : ''}` +
    `${check.overBound.length > 0 ? ` (over the in-flight bound: ${JSON.stringify(check.overBound)})` : ''}, phantoms ${check.phantoms.length}`
  return { ok, line }
}

// ---------------------------------------------------------------------------------
// The mesh under test and its rounds

export interface FaultMeshOptions {
  /** The node clients post to; it processes slowly while a round ingests, so it overflows. */
  sender: FaultNodeSpec
  receivers: FaultNodeSpec[]
  clients?: number
  /** Hook delay for the sender while it should overflow (ms). */
  slowMs?: number
  /** Payload id prefix (unique per mesh). */
  prefix?: string
  log?: (line: string) => void
}

export type RoundKind =
  /** kill -9 of a receiver at a random moment while the sender is handing off. */
  | 'receiver-kill'
  /** kill -9 of a receiver that certainly has batches in flight to it (frozen first so they cannot finish). */
  | 'receiver-kill-pinned'
  /** kill -9 of the sender at a random moment while it is handing off. */
  | 'sender-kill'
  /** kill -9 of the sender while its batches are certainly in flight (receivers frozen), receivers then continued. */
  | 'sender-kill-pinned'
  /** SIGSTOP of a receiver for `stopMs` while the sender has batches in flight to it, then SIGCONT. */
  | 'receiver-stop'
  /** SIGSTOP of the sender for `stopMs` mid-handoff: answers wait past its timeout, so it resends. */
  | 'sender-stop'

export interface RoundResult {
  round: number
  kind: RoundKind
  victim: string
  ms: number
  /** Handoff batches in flight at the fault: for a sender kill, read from its disk. */
  pendingAtKill?: number
  /** Of their events, those the promised peer handed on one more hop (allowed; for the record). */
  passedOn?: number
  /** The sender saw an unknown outcome with the victim (it must resend, never process itself). */
  unknownOutcomes: number
  /** Resends the victim answered as already held: it had made the batch durable before the fault. */
  alreadyHeld: number
  check: DeliveryCheck
  ok: boolean
  line: string
  /** Milliseconds spent in each phase, for tuning. */
  phases: Record<string, number>
}

export class FaultMesh {
  readonly disruptions: Disruption[] = []
  readonly clients: IngestClients
  private rounds = 0
  /** Unpinned receiver kills so far: their victim takes turns among the receivers. */
  private receiverKills = 0
  private phases: Record<string, number> = {}
  private phaseAt = 0

  private constructor(
    readonly hook: HookServer,
    readonly sender: FaultNode,
    readonly receivers: FaultNode[],
    private readonly options: Required<Omit<FaultMeshOptions, 'log'>> & Pick<FaultMeshOptions, 'log'>,
  ) {
    this.clients = startIngestClients({
      clients: options.clients,
      // Undefined while the sender is down: the clients wait rather than post into the void.
      target: () => this.sender.url,
      prefix: options.prefix,
      // Batches of up to 32: the sender passes its high-water mark within a few requests.
      maxBatch: 32,
    })
    this.clients.pause()
  }

  static async start(options: FaultMeshOptions): Promise<FaultMesh> {
    const opts = { clients: 4, slowMs: 500, prefix: 'f', ...options }
    const hook = await HookServer.start()
    const specs = [opts.sender, ...opts.receivers]
    const free = await reservePorts(specs.length * 2)
    const ports = specs.map((_, i) => ({ http: free[2 * i]!, mesh: free[2 * i + 1]! }))
    const root = makeTempDir('binge-faults-')
    const nodes = specs.map((spec, i) => {
      const dataDir = path.join(root, spec.id)
      const peers = ports.filter((_, j) => j !== i).map((p) => p.mesh)
      const file = writeConfig(root, nodeConfig(spec, dataDir, ports[i]!.http, ports[i]!.mesh, peers, hook.url), `${spec.id}.yaml`)
      return new FaultNode(spec, dataDir, file, ports[i]!.http)
    })
    await Promise.all(nodes.map((n) => n.start()))
    const mesh = new FaultMesh(hook, nodes[0]!, nodes.slice(1), opts)
    await mesh.waitConnected()
    return mesh
  }

  get nodes(): FaultNode[] {
    return [this.sender, ...this.receivers]
  }

  /** Stop the clients and the hook; the caller kills the nodes (killAllNodes). */
  async close(): Promise<void> {
    this.clients.resume()
    await this.clients.stop()
    await this.hook.close()
  }

  /** Each node's queue and counters and the end of its log, for a failure message. */
  async describe(lines = 20): Promise<string> {
    const parts = await Promise.all(
      this.nodes.map(async (n) => {
        const stats = await n.stats().then(
          (s) => JSON.stringify({ queue: s.queue, counters: s.counters }),
          (e: unknown) => String(e),
        )
        return `${n.id}: ${stats}\n${n.lives.at(-1)?.tail(lines) ?? ''}`
      }),
    )
    return parts.join('\n')
  }

  check(): DeliveryCheck {
    return checkDelivery(this.clients.ledger, this.hook.records, this.disruptions)
  }

  /** Until the sender has fresh gossip from every receiver (so any of them may be chosen). */
  async waitConnected(timeoutMs = 30_000): Promise<void> {
    const want = this.receivers.map((r) => r.id)
    await waitFor(
      async () => {
        const s = await this.sender.stats()
        return want.every((id) => s.peers.some((p) => p.node === id && p.connected && p.ageMs < 1_000))
      },
      { timeoutMs, intervalMs: 50, what: `node ${this.sender.id} to hear from ${want.join(', ')}` },
    )
  }

  /**
   * Until every node holds nothing unprocessed, in flight or handing off, twice in a row
   * with the same counters: a batch accepted between reading the sender and a receiver
   * would otherwise slip between two reads.
   */
  async waitDrained(timeoutMs = 60_000): Promise<void> {
    let last = ''
    await waitFor(
      async () => {
        const all = await Promise.all(this.nodes.map((n) => n.stats()))
        const idle = all.every((s) => s.queue.unprocessed === 0 && s.queue.inflight === 0 && s.queue.handingOff === 0)
        const now = JSON.stringify(all.map((s) => [s.counters.processed, s.counters.handedOff, s.counters.handedIn, s.counters.received]))
        const stable = idle && now === last
        last = idle ? now : ''
        return stable
      },
      { timeoutMs, intervalMs: 50, what: 'every node to drain (unprocessed, in flight and handing off all 0)' },
    )
  }

  /** Ingest into the sender, slowed down, until it has started handing off. */
  private async overflow(): Promise<void> {
    this.hook.setDelay(this.sender.id, this.options.slowMs)
    const before = (await this.sender.stats()).counters.handedOff ?? 0
    this.clients.resume()
    await waitFor(async () => ((await this.sender.stats()).counters.handedOff ?? 0) > before, {
      timeoutMs: 30_000,
      intervalMs: 25,
      what: `node ${this.sender.id} to hand events off`,
    })
  }

  /**
   * A moment when the sender has a batch in flight, if one comes within `ms` (a batch
   * to a live peer takes milliseconds, so a poll may miss them all): the unpinned
   * rounds kill then, or at the deadline anyway, a random moment of an active handoff.
   */
  private async maybeInFlight(ms = 1_000): Promise<void> {
    await waitFor(async () => (await this.sender.stats()).queue.handingOff > 0, { timeoutMs: ms, intervalMs: 10 }).catch(() => undefined)
  }

  /**
   * Freeze `nodes` (SIGSTOP) at a moment the sender has batches in flight, until some
   * stay stuck there. The sender offers a peer no more than the room its last
   * announcement left, so a freeze may find nothing in flight and nothing sent after
   * it: then thaw them, let batches go out again, and freeze again. Returns when the
   * last freeze began.
   */
  private async freezeWithStuckBatches(nodes: FaultNode[]): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      await this.maybeInFlight(2_000)
      const at = Date.now()
      for (const r of nodes) r.signal('SIGSTOP')
      try {
        await this.stuckHandoffs(300, attempt < 10 ? 3_000 : 30_000)
        return at
      } catch (err) {
        if (attempt >= 10) throw err
        for (const r of nodes) {
          r.signal('SIGCONT')
          this.disruptions.push({ node: r.id, kind: 'stop', at, resumedAt: Date.now(), workers: r.spec.workers })
        }
      }
    }
  }

  /** Until the sender has had batches handing off for `ms` on end: some are stuck with a frozen peer. */
  private async stuckHandoffs(ms = 300, timeoutMs = 30_000): Promise<void> {
    let since: number | undefined
    await waitFor(
      async () => {
        const s = await this.sender.stats()
        if (s.queue.handingOff === 0) since = undefined
        else since ??= Date.now()
        return since !== undefined && Date.now() - since >= ms
      },
      { timeoutMs, intervalMs: 20, what: `node ${this.sender.id} to have batches stuck in flight` },
    )
  }

  private async drainAndCheck(): Promise<DeliveryCheck> {
    this.clients.pause()
    this.hook.setDelay(this.sender.id, 0)
    this.mark('fault')
    await this.waitDrained()
    this.mark('drain')
    return this.check()
  }

  private countLogs(node: FaultNode, from: number, msg: string, peers?: string[]): number {
    return node.logsSince(from, (l) => l.msg === msg && (peers === undefined || peers.includes(String(l.peer)))).length
  }

  /**
   * kill -9 `nodes` (frozen or not), run `whileDown`, restart them on the same ports.
   * Each kill is a disruption from `at` until the restart is spawned.
   */
  private async killAndRestart(nodes: FaultNode[], at: number, whileDown?: () => Promise<void>): Promise<void> {
    await Promise.all(nodes.map((n) => n.kill9()))
    this.clients.pause()
    this.mark('kill')
    await whileDown?.()
    const resumedAt = Date.now()
    this.disruptions.push(...nodes.map((n): Disruption => ({ node: n.id, kind: 'kill', at, resumedAt, workers: n.spec.workers })))
    await Promise.all(nodes.map((n) => n.start()))
    this.mark('restart')
  }

  async round(kind: RoundKind, stopMs = 10_000): Promise<RoundResult> {
    const started = Date.now()
    this.phases = {}
    this.phaseAt = started
    const round = ++this.rounds
    await this.waitConnected()
    this.mark('connect')
    const senderLogs = this.sender.proc!.logs.length
    const unknownMsg = 'A handoff had an unknown outcome; the same batch will be resent to the same peer.'
    const heldMsg = 'A resent handoff batch was already on the peer, which dropped the copies.'
    const takenBackMsg =
      'A peer stayed unreachable past the limit, so its handoff batch was taken back to be processed here; the peer may process some of it too.'
    let victims: FaultNode[]
    let pending: PendingBatch[] | undefined
    await this.overflow()
    this.mark('overflow')
    switch (kind) {
      case 'receiver-kill': {
        victims = [this.receivers[this.receiverKills++ % this.receivers.length]!]
        await this.maybeInFlight()
        await this.killAndRestart(victims, Date.now())
        break
      }
      case 'receiver-kill-pinned': {
        // Freeze every receiver so the batches in flight stay in flight, then kill them all.
        victims = this.receivers
        const at = await this.freezeWithStuckBatches(victims)
        await this.killAndRestart(victims, at)
        break
      }
      case 'sender-kill':
      case 'sender-kill-pinned': {
        victims = [this.sender]
        const frozen = kind === 'sender-kill-pinned' ? this.receivers : []
        let frozenAt = Date.now()
        if (frozen.length > 0) frozenAt = await this.freezeWithStuckBatches(frozen)
        else await this.maybeInFlight()
        await this.killAndRestart([this.sender], Date.now(), async () => {
          // What the kill left promised to peers, read from its store before it restarts.
          pending = await readHandingOff(this.sender.dataDir)
          for (const r of frozen) {
            r.signal('SIGCONT')
            this.disruptions.push({ node: r.id, kind: 'stop', at: frozenAt, resumedAt: Date.now(), workers: r.spec.workers })
          }
          this.hook.setDelay(this.sender.id, 0)
        })
        break
      }
      case 'receiver-stop': {
        // Freeze every receiver until the sender has timed out on one of them (so that
        // one certainly has a batch in flight), let the others go, hold that one for
        // `stopMs` in all, then SIGCONT it.
        const at = await this.freezeWithStuckBatches(this.receivers)
        this.clients.pause()
        const ids = this.receivers.map((r) => r.id)
        const gaveUp = [unknownMsg, takenBackMsg]
        const timedOut = await waitFor(
          () => this.sender.logsSince(senderLogs, (l) => gaveUp.includes(String(l.msg)) && ids.includes(String(l.peer)))[0],
          {
            timeoutMs: 30_000,
            intervalMs: 20,
            what: `node ${this.sender.id} to time out on a frozen receiver`,
          },
        )
        const victim = this.receivers.find((r) => r.id === timedOut.peer)!
        victims = [victim]
        for (const r of this.receivers.filter((x) => x !== victim)) {
          r.signal('SIGCONT')
          this.disruptions.push({ node: r.id, kind: 'stop', at, resumedAt: Date.now(), workers: r.spec.workers })
        }
        // The fault is the freeze itself, so this one wait is a fixed duration.
        await waitFor(() => Date.now() - at >= stopMs, { timeoutMs: stopMs + 5_000, intervalMs: 50, what: 'the end of the SIGSTOP' })
        victim.signal('SIGCONT')
        this.disruptions.push({ node: victim.id, kind: 'stop', at, resumedAt: Date.now(), workers: victim.spec.workers })
        this.mark('stop')
        break
      }
      case 'sender-stop': {
        victims = [this.sender]
        await this.maybeInFlight()
        const at = Date.now()
        this.sender.signal('SIGSTOP')
        this.clients.pause()
        await waitFor(() => Date.now() - at >= stopMs, { timeoutMs: stopMs + 5_000, intervalMs: 50, what: 'the end of the SIGSTOP' })
        this.sender.signal('SIGCONT')
        this.disruptions.push({ node: this.sender.id, kind: 'stop', at, resumedAt: Date.now(), workers: this.sender.spec.workers })
        this.mark('stop')
        break
      }
    }
    const check = await this.drainAndCheck()
    const ids = victims.map((v) => v.id)
    const peers = kind === 'sender-stop' ? this.receivers.map((r) => r.id) : ids
    const result: Omit<RoundResult, 'check' | 'ok' | 'line' | 'ms' | 'phases'> = {
      round,
      kind,
      victim: ids.join('+'),
      unknownOutcomes: 0,
      alreadyHeld: 0,
    }
    if (pending) {
      // Never processed locally meanwhile: no event of a batch promised to a peer came
      // out of the sender (it can never come back to it either: a peer never offers an
      // event to the node it came from), and each came out somewhere.
      result.pendingAtKill = pending.length
      const nodeOf = new Map(this.nodes.map((n) => [n.peerId, n.id]))
      const outBy = new Map<string, Set<string>>()
      for (const r of this.hook.records) (outBy.get(r.cid) ?? outBy.set(r.cid, new Set()).get(r.cid)!).add(r.node)
      for (const b of pending) {
        const want = nodeOf.get(b.peer)
        for (const cid of b.cids) {
          const got = [...(outBy.get(cid) ?? [])]
          if (got.length === 0 || got.includes(this.sender.id)) check.misrouted.push({ cid, promisedTo: want ?? b.peer, outputBy: got })
          else if (!got.includes(want ?? '')) result.passedOn = (result.passedOn ?? 0) + 1
        }
      }
      // The restarted sender's log: resends its peers had already made durable.
      result.alreadyHeld = this.countLogs(this.sender, 0, heldMsg)
    } else {
      result.unknownOutcomes = this.countLogs(this.sender, senderLogs, unknownMsg, peers)
      result.alreadyHeld = this.countLogs(this.sender, senderLogs, heldMsg, peers)
    }
    return this.finish(result, check, started)
  }

  /** Time spent since the last mark, under `name`. */
  private mark(name: string): void {
    const now = Date.now()
    this.phases[name] = (this.phases[name] ?? 0) + now - this.phaseAt
    this.phaseAt = now
  }

  private finish(result: Omit<RoundResult, 'check' | 'ok' | 'line' | 'ms' | 'phases'>, check: DeliveryCheck, started: number): RoundResult {
    const { ok, line } = summarize(check)
    const ms = Date.now() - started
    const full: RoundResult = { ...result, check, ok, line, ms, phases: this.phases }
    const extra =
      result.pendingAtKill !== undefined
        ? `, batches on disk at the kill ${result.pendingAtKill}${result.passedOn ? ` (${result.passedOn} events passed on by their peer)` : ''}`
        : `, unknown outcomes ${result.unknownOutcomes}`
    const phases = Object.entries(this.phases)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`)
      .join(' ')
    this.options.log?.(
      `round ${result.round} ${result.kind} (${result.victim}) ${(ms / 1000).toFixed(1)}s [${phases}]${extra}, already held ${result.alreadyHeld}: ${line}`,
    )
    return full
  }
}
