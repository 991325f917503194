// Load gossip: every interval this node publishes its announcement on the load topic,
// and every valid announcement it receives updates the peer table and teaches the
// redialer the sender's addresses. Invalid messages are rejected in the topic
// validator, before delivery, so they are neither believed nor forwarded. A valid
// announcement from a peer outside this node's allow-list (relayed by an allowed one)
// is ignored: believing it would offer events to a peer the gater will not let us reach.
// A peer that claims a node name another peer id holds is listed but flagged (peer-table.ts).
import { TopicValidatorResult, type Message, type SubscriptionChangeData } from '@libp2p/gossipsub'
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import { decodeAnnouncement, encodeAnnouncement, loadTopic, type Announcement } from './announcement.js'
import { isPeerAllowed, type PeerHost } from './peer-host.js'
import type { PeerTable } from './peer-table.js'
import { joinHostPort, splitHostPort } from '../util/host-port.js'

export interface GossipOptions {
  host: PeerHost
  table: PeerTable
  intervalMs: number
  log: Logger
  /** This node's announcement as of now. */
  self(): Announcement
  /** A valid announcement arrived (after the table was updated). */
  onAnnouncement(a: Announcement): void
}

export class LoadGossip {
  private timer?: NodeJS.Timeout
  private greeting = false
  /** An announcement asked for by `soon()` and not yet made. */
  private early?: NodeJS.Timeout
  private publishedAt = 0
  /** When `soon` last published. */
  private soonAt = 0
  /** Counts of rejected messages, for tests and metrics. */
  rejected = 0

  constructor(private readonly options: GossipOptions) {}

  private readonly onMessage = (event: CustomEvent<Message>) => {
    const msg = event.detail
    if (msg.topic !== loadTopic || msg.type !== 'signed') return
    const a = decodeAnnouncement(msg.data, msg.from.toString())
    if (typeof a === 'string' || !isPeerAllowed(this.options.host, a.peerId)) return
    const owner = this.options.table.update(a, this.httpUrlOf(a))
    if (owner !== undefined) {
      this.options.log.warn(
        { node: a.node, peer: a.peerId, owner },
        'A peer announced a node name another peer id holds; it is listed as a conflict and never handed events.',
      )
    }
    this.options.onAnnouncement(a)
  }

  /**
   * A peer just subscribed to the load topic (it connected): announce now rather than at
   * the next interval, so it, and the peers it relays to, learn of this node in one hop.
   * Several at once share one announcement.
   */
  private readonly onSubscription = (event: CustomEvent<SubscriptionChangeData>) => {
    if (this.greeting || !this.timer) return
    if (!event.detail.subscriptions.some((s) => s.topic === loadTopic && s.subscribe)) return
    this.greeting = true
    setTimeout(() => {
      this.greeting = false
      if (this.timer) void this.publish()
    }, 20).unref()
  }

  start(): void {
    const { host } = this.options
    host.services.pubsub.topicValidators.set(loadTopic, (_relayer, msg) => {
      if (msg.type !== 'signed') return this.reject('an unsigned announcement')
      const a = decodeAnnouncement(msg.data, msg.from.toString())
      if (typeof a === 'string') return this.reject(a)
      return isPeerAllowed(host, a.peerId) ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
    })
    // Offer handoffs only to peers we hold a connection to: the redialer keeps one to
    // every reachable peer, and a batch sent to one that is down waits for it to return.
    this.options.table.setConnected((peerId) => host.getConnections().some((c) => c.remotePeer.toString() === peerId))
    host.services.pubsub.addEventListener('message', this.onMessage)
    host.services.pubsub.addEventListener('subscription-change', this.onSubscription)
    host.services.pubsub.subscribe(loadTopic)
    this.timer = setInterval(() => void this.publish(), this.options.intervalMs)
    this.timer.unref()
    void this.publish()
  }

  /**
   * Announce again soon: this node just took a handoff, and the announcement is how the
   * sender learns it holds the events, so the sender's credit grows before the next
   * interval instead of after it. At most once per `minSpacingMs` from any announcement
   * (peers take one confirmation per about that long, peer-credit.ts), but at once for
   * a handoff that begins (none asked for one within `minSpacingMs`): the announcements
   * before it, of the interval or of a join, confirmed nothing, and the sender's credit
   * stays at one batch until it hears.
   */
  soon(minSpacingMs: number): void {
    if (this.early || !this.timer) return
    const now = Date.now()
    const wait = this.soonAt + minSpacingMs <= now ? 0 : Math.max(this.soonAt, this.publishedAt) + minSpacingMs - now
    this.early = setTimeout(() => {
      this.early = undefined
      this.soonAt = Date.now()
      if (this.timer) void this.publish()
    }, wait)
    this.early.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    clearTimeout(this.early)
    this.early = undefined
    this.timer = undefined
    const pubsub = this.options.host.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscription)
    pubsub.topicValidators.delete(loadTopic)
  }

  async publish(): Promise<void> {
    this.publishedAt = Date.now()
    try {
      await this.options.host.services.pubsub.publish(loadTopic, encodeAnnouncement(this.options.self()))
    } catch (err) {
      this.options.log.debug({ err: asError(err).message }, 'Publishing the load announcement failed; the next interval tries again.')
    }
  }

  private reject(reason: string): TopicValidatorResult {
    this.rejected++
    this.options.log.warn({ reason }, 'An invalid gossip message was rejected.')
    return TopicValidatorResult.Reject
  }

  /**
   * The peer's HTTP URL. A wildcard host is replaced by the address we reach the peer at
   * (the connection's remote address, else the first non-loopback address it announced);
   * an IPv6 host is bracketed.
   */
  private httpUrlOf(a: Announcement): string {
    // The schema makes it end in :port; a host it cannot read counts as none given.
    const { host, port } = splitHostPort(a.http) ?? { host: '', port: Number(a.http.slice(a.http.lastIndexOf(':') + 1)) }
    if (host !== '' && host !== '0.0.0.0' && host !== '::') return `http://${joinHostPort(host, port)}`
    const connection = this.options.host.getConnections().find((c) => c.remotePeer.toString() === a.peerId)
    const hosts = [connection?.remoteAddr.toString(), ...a.addrs].map((addr) => (addr === undefined ? undefined : hostOf(addr)))
    const seen = hosts[0] ?? hosts.slice(1).find((h) => h !== undefined && !isLoopback(h)) ?? hosts.find((h) => h !== undefined)
    return `http://${joinHostPort(seen ?? '127.0.0.1', port)}`
  }
}

function hostOf(addr: string): string | undefined {
  return /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(addr)?.[1]
}

function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === 'localhost'
}
