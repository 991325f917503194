// Load gossip: every interval this node publishes its announcement on the load topic,
// and every valid announcement it receives updates the peer table and teaches the
// redialer the sender's addresses. Invalid messages are rejected in the topic
// validator, before delivery, so they are neither believed nor forwarded.
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import { decodeAnnouncement, encodeAnnouncement, loadTopic, type Announcement } from './announcement.js'
import type { PeerHost } from './peer-host.js'
import type { PeerTable } from './peer-table.js'

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
  /** Counts of rejected messages, for tests and metrics. */
  rejected = 0

  constructor(private readonly options: GossipOptions) {}

  private readonly onMessage = (event: CustomEvent<Message>) => {
    const msg = event.detail
    if (msg.topic !== loadTopic || msg.type !== 'signed') return
    const a = decodeAnnouncement(msg.data, msg.from.toString())
    if (typeof a === 'string') return
    this.options.table.update(a, this.httpUrlOf(a))
    this.options.onAnnouncement(a)
  }

  start(): void {
    const { host } = this.options
    host.services.pubsub.topicValidators.set(loadTopic, (_relayer, msg) => {
      if (msg.type !== 'signed') return this.reject('an unsigned announcement')
      const a = decodeAnnouncement(msg.data, msg.from.toString())
      return typeof a === 'string' ? this.reject(a) : TopicValidatorResult.Accept
    })
    host.services.pubsub.addEventListener('message', this.onMessage)
    host.services.pubsub.subscribe(loadTopic)
    this.timer = setInterval(() => void this.publish(), this.options.intervalMs)
    this.timer.unref()
    void this.publish()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    const pubsub = this.options.host.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.topicValidators.delete(loadTopic)
  }

  async publish(): Promise<void> {
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

  /** The peer's HTTP URL; a wildcard host is replaced by the address we reach it at. */
  private httpUrlOf(a: Announcement): string {
    const i = a.http.lastIndexOf(':')
    const host = a.http.slice(0, i)
    const port = a.http.slice(i + 1)
    if (host !== '' && host !== '0.0.0.0' && host !== '::') return `http://${host}:${port}`
    const connection = this.options.host.getConnections().find((c) => c.remotePeer.toString() === a.peerId)
    const seen = connection?.remoteAddr.toString() ?? a.addrs[0] ?? ''
    const ip = /^\/(?:ip4|dns4|dns)\/([^/]+)/.exec(seen)?.[1] ?? '127.0.0.1'
    return `http://${ip}:${port}`
  }
}
