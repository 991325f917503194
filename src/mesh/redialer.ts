// Keeps this node connected to the peers it should know: the configured bootstrap
// addresses and every peer learned from gossip. libp2p's own reconnect gives up after
// about a minute; this loop never does, backing off per target up to `maxBackoffMs`,
// so a restarted node or a healed partition rejoins by itself. A dial that succeeds but
// whose connection does not last (the remote's gater or allow-list closes it at once)
// counts as a failure too, or the loop would redial such a peer every tick forever.
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import type { PeerHost } from './peer-host.js'

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
}

const tickMs = 500
/** A connection that lasts this long resets the target's backoff. */
const stableMs = 5_000

export class Redialer {
  private readonly targets = new Map<string, Target>()
  private timer?: NodeJS.Timeout

  constructor(private readonly host: PeerHost, private readonly log: Logger, private readonly maxBackoffMs = 15_000) {}

  addBootstrap(addr: Multiaddr): void {
    const key = addr.toString()
    if (!this.targets.has(key)) this.targets.set(key, { label: key, addrs: [addr], failures: 0, nextAttempt: 0, dialing: false, flapping: false, reached: false })
  }

  /** A peer heard of through gossip: keep a connection to it too. */
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
      return
    }
    // A bootstrap target that turned out to be this peer already covers it.
    for (const t of this.targets.values()) if (t.peerId?.toString() === peerIdText) return
    this.targets.set(peerIdText, { label: peerIdText, addrs: parsed, peerId: peerIdFromString(peerIdText), failures: 0, nextAttempt: 0, dialing: false, flapping: false, reached: false })
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

  private tick(): void {
    const now = Date.now()
    for (const t of this.targets.values()) {
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
        const msg = 'A mesh peer closed the connection soon after it was made (is this node on its allow-list?); dialling again with backoff.'
        if (t.failures === 1 || t.failures % 20 === 0) this.log.warn(fields, msg)
        else this.log.debug(fields, msg)
      }
      if (now < t.nextAttempt) continue
      t.dialing = true
      void this.dial(t).finally(() => (t.dialing = false))
    }
  }

  /** Count one more failure and schedule the next dial; returns the backoff. */
  private backOff(t: Target): number {
    t.failures++
    const backoff = Math.min(this.maxBackoffMs, 500 * 2 ** Math.min(t.failures, 10))
    t.nextAttempt = Date.now() + backoff * (0.75 + Math.random() * 0.5)
    return backoff
  }

  private async dial(t: Target): Promise<void> {
    try {
      const signal = AbortSignal.timeout(5_000)
      // A learned peer is dialled by id, so libp2p may use any address it knows; a
      // bootstrap address is dialled as written, since its peer id may have changed.
      if (t.peerId && t.addrs.length > 0) await this.host.peerStore.merge(t.peerId, { multiaddrs: t.addrs }).catch(() => {})
      const connection = t.peerId && t.label === t.peerId.toString() ? await this.host.dial(t.peerId, { signal }) : await this.host.dial(t.addrs[0]!, { signal })
      if (!t.reached || (t.failures > 0 && !t.flapping)) this.log.info({ target: t.label, peer: connection.remotePeer.toString() }, 'Connected to a mesh peer.')
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
