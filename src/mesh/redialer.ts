// Keeps this node connected to the peers it should know: the configured bootstrap
// addresses and the peers learned from gossip. libp2p's own reconnect gives up after
// about a minute; this loop never does for a bootstrap address, backing off per target
// up to `maxBackoffMs`, so a restarted node or a healed partition rejoins by itself. A
// learned peer is dialled at addresses it chose, so it is kept only while it announces:
// one not heard of for `forgetMs` is dropped, and the set is bounded (`maxTargets`, the
// longest unheard learned peer evicted first). A dial that succeeds but whose
// connection does not last (the remote's gater closes it) counts as a failure too, or
// the loop would redial such a peer every tick forever.
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import { dialTimeoutMs, type PeerHost } from './peer-host.js'
import { backoffDelay } from '../util/backoff.js'

interface Target {
  label: string
  addrs: Multiaddr[]
  /** Known once a dial succeeded (bootstrap) or from gossip. */
  peerId?: PeerId
  /** Dials in a row that failed or whose connection did not last `stableMs`. */
  failures: number
  nextAttempt: number
  dialing: boolean
  /** When the last successful dial connected; undefined once the connection proved stable. */
  connectedAt?: number
  /** The last connection dropped before it proved stable (quiet the "Connected" line). */
  flapping: boolean
  /** A dial of ours reached it once: later "Connected" lines mean it came back. */
  reached: boolean
  /** Configured: dialled for ever. Learned targets are forgotten once unheard for `forgetMs`. */
  bootstrap: boolean
  /** When gossip last named it (learned targets). */
  heardAt: number
}

export interface RedialerOptions {
  maxBackoffMs?: number
  /** A learned peer unheard for this long leaves the redial set. */
  forgetMs?: number
  /** Most targets kept; past it the longest unheard learned peer is dropped. */
  maxTargets?: number
}

const tickMs = 500
/**
 * Dials in flight at once. A handshake costs CPU on both sides: a node that learns 15
 * peers at once and dials them all in parallel, while they all dial it, finishes none
 * on a busy host before the deadline, and the retries repeat it.
 */
const maxDialing = 4
/**
 * A newly learned peer whose id sorts before ours is dialled this much later: it
 * learned of us at the same moment and dials us now, and one handshake per pair is
 * half the work of two. If its dial does not arrive, ours goes out after the delay.
 */
const deferMs = 3_000
/** A connection that lasts this long resets the target's backoff. */
const stableMs = 5_000

export class Redialer {
  private readonly targets = new Map<string, Target>()
  private timer?: NodeJS.Timeout
  /** Dials in flight. */
  private dialing = 0
  private readonly maxBackoffMs: number
  private readonly forgetMs: number
  private readonly maxTargets: number

  constructor(
    private readonly host: PeerHost,
    private readonly log: Logger,
    options: RedialerOptions = {},
  ) {
    this.maxBackoffMs = options.maxBackoffMs ?? 15_000
    this.forgetMs = options.forgetMs ?? 60_000
    this.maxTargets = options.maxTargets ?? 1024
  }

  addBootstrap(addr: Multiaddr): void {
    const key = addr.toString()
    if (this.targets.has(key)) return
    this.targets.set(key, {
      label: key,
      addrs: [addr],
      failures: 0,
      nextAttempt: 0,
      dialing: false,
      flapping: false,
      reached: false,
      bootstrap: true,
      heardAt: Date.now(),
    })
  }

  /** How many peers are being kept connected (bootstrap and learned): for tests and stats. */
  size(): number {
    return this.targets.size
  }

  /** Is this peer id (learned or a reached bootstrap) in the redial set? */
  has(peerIdText: string): boolean {
    return [...this.targets.values()].some((t) => t.peerId?.toString() === peerIdText)
  }

  /** A peer heard of through gossip: keep a connection to it too, while it keeps announcing. */
  learn(peerIdText: string, addrs: string[]): void {
    if (peerIdText === this.host.peerId.toString()) return
    const existing = this.targets.get(peerIdText)
    const parsed = addrs.flatMap((a) => {
      try {
        return [multiaddr(a)]
      } catch {
        return []
      }
    })
    if (existing) {
      if (parsed.length > 0) existing.addrs = parsed
      existing.heardAt = Date.now()
      return
    }
    // A bootstrap target that turned out to be this peer already covers it.
    for (const t of this.targets.values()) if (t.peerId?.toString() === peerIdText) return
    if (this.targets.size >= this.maxTargets && !this.evictOne()) return
    this.targets.set(peerIdText, {
      label: peerIdText,
      addrs: parsed,
      peerId: peerIdFromString(peerIdText),
      failures: 0,
      dialing: false,
      flapping: false,
      nextAttempt: peerIdText < this.host.peerId.toString() ? Date.now() + deferMs : 0,
      reached: false,
      bootstrap: false,
      heardAt: Date.now(),
    })
    // A new peer is dialled now, not at the next tick: joining takes one round of gossip.
    if (this.timer) this.tick()
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), tickMs)
    this.timer.unref()
    this.tick()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private connected(t: Target): boolean {
    return t.peerId !== undefined && this.host.getConnections(t.peerId).length > 0
  }

  /** Drop the learned target unheard for longest, to make room; false if all are bootstrap. */
  private evictOne(): boolean {
    let oldest: Target | undefined
    for (const t of this.targets.values()) if (!t.bootstrap && (!oldest || t.heardAt < oldest.heardAt)) oldest = t
    if (oldest) this.targets.delete(oldest.label)
    return oldest !== undefined
  }

  private tick(): void {
    const now = Date.now()
    for (const t of this.targets.values()) {
      if (!t.bootstrap && now - t.heardAt > this.forgetMs) {
        // Gone quiet: it left, or never was a node (a throwaway identity naming an address).
        this.targets.delete(t.label)
        this.log.debug(
          { target: t.label, unheardMs: now - t.heardAt },
          'A learned mesh peer stopped announcing, so it is no longer redialled.',
        )
        continue
      }
      if (t.dialing) continue
      if (this.connected(t)) {
        if (t.connectedAt !== undefined && now - t.connectedAt >= stableMs) {
          t.connectedAt = undefined
          t.failures = 0
          t.nextAttempt = 0
          t.flapping = false
        }
        continue
      }
      if (t.connectedAt !== undefined) {
        // Connected, then dropped before it proved stable: back off as after a failure.
        t.connectedAt = undefined
        t.flapping = true
        const backoff = this.backOff(t)
        const fields = { target: t.label, peer: t.peerId?.toString(), failures: t.failures, retryInMs: Math.round(backoff) }
        const msg =
          'A mesh peer closed the connection soon after it was made (is this node on its allow-list?); dialling again with backoff.'
        if (t.failures === 1 || t.failures % 20 === 0) this.log.warn(fields, msg)
        else this.log.debug(fields, msg)
      }
      if (now < t.nextAttempt || this.dialing >= maxDialing) continue
      this.dialing++
      t.dialing = true
      void this.dial(t).finally(() => {
        t.dialing = false
        this.dialing--
        // A slot is free: the next waiting peer is dialled now, not at the next tick.
        if (this.timer) this.tick()
      })
    }
  }

  /** Count one more failure and schedule the next dial; returns the backoff. */
  private backOff(t: Target): number {
    t.failures++
    const backoff = backoffDelay(t.failures + 1, 500, this.maxBackoffMs)
    t.nextAttempt = Date.now() + backoff
    return backoff
  }

  private async dial(t: Target): Promise<void> {
    try {
      const signal = AbortSignal.timeout(dialTimeoutMs)
      // A learned peer is dialled by id, so libp2p may use any address it knows; a
      // bootstrap address is dialled as written, since its peer id may have changed.
      if (t.peerId && t.addrs.length > 0) await this.host.peerStore.merge(t.peerId, { multiaddrs: t.addrs }).catch(() => {})
      const connection =
        t.peerId && t.label === t.peerId.toString()
          ? await this.host.dial(t.peerId, { signal })
          : await this.host.dial(t.addrs[0]!, { signal })
      if (!t.reached || (t.failures > 0 && !t.flapping))
        this.log.info({ target: t.label, peer: connection.remotePeer.toString() }, 'Connected to a mesh peer.')
      t.peerId = connection.remotePeer
      t.connectedAt = Date.now()
      t.reached = true
    } catch (err) {
      const backoff = this.backOff(t)
      const fields = { target: t.label, failures: t.failures, retryInMs: Math.round(backoff), err: asError(err).message }
      if (t.failures === 1 || t.failures % 20 === 0) this.log.warn(fields, 'A mesh peer could not be reached; dialling again with backoff.')
      else this.log.debug(fields, 'A mesh peer could not be reached yet.')
    }
  }
}
