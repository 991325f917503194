// The mesh under test and its rounds (part of the fault harness: ../faults.ts).

import path from 'node:path'
import { makeTempDir, startIngestClients, waitFor, writeConfig, type IngestClients } from '../node-process.js'
import { reservePorts } from '../ports.js'
import { HookServer } from './hook-server.js'
import { type FaultNodeSpec, FaultNode, nodeConfig } from './fault-node.js'
import { type PendingBatch, readHandingOff } from './handing-off.js'
import { type Disruption, type DeliveryCheck, checkDelivery, summarize } from './delivery-check.js'

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
