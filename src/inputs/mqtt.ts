// mqtt: subscribes to topics on an MQTT broker (MQTT 5, MQTT.js) and takes each
// message's payload through the node's one door, with `{ input, topic }` as its meta.
//
// Design constraints:
// - A QoS 1 message is acknowledged (PUBACK) only once its events are durable. A QoS 2
//   message gets its PUBREC only once durable (the take starts in `customHandleAcks`, at
//   the PUBLISH), since after a PUBREC the broker never sends the PUBLISH again and
//   MQTT.js's own store is in memory.
// - MQTT.js handles one packet at a time per connection; waiting there for each durable
//   write would make one write per connection at a time. So by default the PUBACK/PUBREC
//   is held in an ack window (mqtt-acks.ts) while MQTT.js reads on: up to `inFlight`
//   messages (the receive maximum) are written together, in one group commit, and acked
//   in order. `inFlight: 1` waits in the callbacks instead (MQTT.js's public hooks only).
//   `connections: N` opens N sessions in one shared subscription (`$share/GROUP/topic`).
// - A persistent session by default (clean start off, a session expiry, client id = the
//   node id): messages published while the node is down wait at the broker.
// - A refused payload (hard cap, not ready) is not acked and is retried with backoff; the
//   broker holds the rest meanwhile. One that can never parse is dead-lettered, then acked.
// - Reconnects forever with backoff. `stop` ends the waiting, lets a write in progress
//   finish (and ack), and disconnects; the session and whatever it holds stay at the broker.
import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import { z } from 'zod'
import { asError } from '../errors.js'
import { bool, int, oneOf, strict, text } from '../schema/fields.js'
import { backoffDelay } from '../util/backoff.js'
import { durationSchema } from '../util/duration.js'
import { brokerOptions } from '../util/mqtt-url.js'
import { AckWindow } from './mqtt-acks.js'
import { takePayload } from './take-payload.js'
import type { Input, InputContext, InputEntry, InputStatus } from './types.js'

const schema = strict({
  url: text()
    .regex(/^(mqtts?|tcp|tls|ssl):\/\/[^/]+/, 'expected mqtt://host:port or mqtts://host:port')
    .describe('the broker: `mqtt://host:1883`, or `mqtts://host:8883` for TLS'),
  topics: z
    .array(text().min(1, 'expected a topic filter'))
    .min(1, 'expected at least one topic filter')
    .describe('topic filters to subscribe to (`sensors/#`, `$share/group/t`)'),
  qos: int(0, 2).default(1).describe('subscription QoS: 0 (no ack: a crash can lose what was in flight), 1 or 2 (acked only once durable)'),
  clientId: text().min(1).optional().describe('MQTT client id; default: the node id (`-1`, `-2`, ... added for further connections)'),
  username: text().optional().describe('user name, e.g. `${MQTT_USER}`'),
  password: text().optional().describe('password, e.g. `${MQTT_PASSWORD}`'),
  clean: bool()
    .default(false)
    .describe('start a clean session; false keeps the session, so messages published while the node is down wait for it'),
  sessionExpiry: durationSchema
    .default(7 * 86_400_000)
    .describe('how long the broker keeps the session (and its messages) while the node is away'),
  inFlight: int(1, 65_535)
    .default(256)
    .describe(
      'messages the broker may send before their ack (MQTT 5 receive maximum); their durable writes share one commit; 1: one at a time',
    ),
  connections: int(1, 64).default(1).describe('connections sharing the subscription (`$share/<shareGroup>/...`)'),
  shareGroup: text()
    .regex(/^[^/#+]+$/, 'expected a group name without /, # or +')
    .optional()
    .describe(
      'subscribe as `$share/<shareGroup>/<topic>` so several nodes (or connections) split the messages; default `binge` when connections > 1',
    ),
  format: oneOf(['json', 'ndjson'] as const)
    .default('json')
    .describe('payload format: a JSON object or array of objects, or NDJSON lines'),
  pipeline: text().min(1).optional().describe('only this pipeline (as `POST /events/NAME`); default: every pipeline whose `when` matches'),
  keepalive: durationSchema.default(30_000).describe('MQTT keep-alive'),
  reconnect: strict({
    min: durationSchema.default(500).describe('first wait before reconnecting'),
    max: durationSchema.default(30_000).describe('longest wait between reconnects'),
  })
    .default({ min: 500, max: 30_000 })
    .describe('reconnect backoff; reconnects go on for ever'),
  ca: text().optional().describe('a PEM file of CA certificates to trust for mqtts:// (default: the system CAs)'),
})

export type MqttInputConfig = z.output<typeof schema>

/** The topic filters one connection subscribes to. */
export function subscriptionFilters(config: Pick<MqttInputConfig, 'topics' | 'connections' | 'shareGroup'>): string[] {
  const group = config.shareGroup ?? (config.connections > 1 ? 'binge' : undefined)
  if (group === undefined) return config.topics
  return config.topics.map((t) => (t.startsWith('$share/') ? t : `$share/${group}/${t}`))
}

type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'stopped'

class MqttInput implements Input {
  readonly kind = 'mqtt'
  private readonly counts: InputStatus['counts'] = { received: 0, accepted: 0, deadLettered: 0, deferred: 0 }
  private readonly clients: MqttClient[] = []
  private readonly states: ConnectionState[] = []
  private readonly stopping = new AbortController()
  /** Takes in progress, so `stop` can wait for them. */
  private readonly taking = new Set<Promise<unknown>>()
  private pausedTakes = 0
  private lastError?: string
  private started = false

  constructor(
    private readonly config: MqttInputConfig,
    private readonly context: InputContext,
  ) {}

  async start(): Promise<void> {
    this.started = true
    const base = this.config.clientId ?? this.context.nodeId
    for (let i = 0; i < this.config.connections; i++) this.connect(i, i === 0 ? base : `${base}-${i}`)
  }

  private connect(index: number, clientId: string): void {
    const { config, context } = this
    const ca = config.ca === undefined ? undefined : readFileSync(config.ca)
    const options: IClientOptions = {
      clientId,
      protocolVersion: 5,
      clean: config.clean,
      keepalive: Math.max(1, Math.round(config.keepalive / 1000)),
      reconnectPeriod: config.reconnect.min,
      connectTimeout: 10_000,
      resubscribe: false,
      properties: {
        sessionExpiryInterval: Math.min(0xffff_ffff, Math.round(config.sessionExpiry / 1000)),
        receiveMaximum: config.inFlight,
      },
      ...(config.username === undefined ? {} : { username: config.username }),
      ...(config.password === undefined ? {} : { password: config.password }),
      ...(ca === undefined ? {} : { ca }),
      // QoS 2: the take starts at the PUBLISH; its PUBREC waits until it is durable.
      customHandleAcks: (topic, message, packet: IPublishPacket, done) => {
        if (packet.qos !== 2) return done(null as unknown as Error, 0)
        if (window) {
          const ack = window.hold(packet.messageId!)
          void this.take(topic, message).then((outcome) => outcome !== 'stopped' && ack.durable())
          return window.whenRoom(() => done(null as unknown as Error, 0))
        }
        void this.take(topic, message).then((outcome) => outcome !== 'stopped' && done(null as unknown as Error, 0))
      },
    }
    this.states[index] = 'connecting'
    const client = mqtt.connect({ ...brokerOptions(config.url), ...options })
    this.clients[index] = client
    const window = config.inFlight > 1 ? new AckWindow(client, config.inFlight) : undefined
    client.handleMessage = (packet, callback) => {
      // QoS 2 was taken at its PUBLISH (above); this is its PUBREL.
      if (packet.qos === 2) return callback()
      if (packet.qos === 1 && window) {
        const ack = window.hold(packet.messageId!)
        void this.take(packet.topic, packet.payload as Buffer).then((outcome) => outcome !== 'stopped' && ack.durable())
        return window.whenRoom(callback)
      }
      // QoS 0 (nothing to ack, but the next message waits: backpressure), or one at a time.
      void this.take(packet.topic, packet.payload as Buffer).then((outcome) => outcome !== 'stopped' && callback())
    }
    let attempt = 0
    client.on('connect', (connack) => {
      attempt = 0
      client.options.reconnectPeriod = config.reconnect.min
      client.subscribe(subscriptionFilters(config), { qos: config.qos as 0 | 1 | 2 }, (err, granted) => {
        const refused = granted?.filter((g) => g.qos >= 0x80) ?? []
        if (!err && refused.length === 0) {
          // Connected means subscribed: from now on every message published reaches us.
          if (this.states[index] !== 'stopped') this.states[index] = 'connected'
          context.log.info({ clientId, sessionPresent: connack.sessionPresent }, 'The MQTT input is connected and subscribed.')
          return
        }
        this.lastError = err ? err.message : `the broker refused ${refused.map((g) => g.topic).join(', ')} (reason ${refused[0]!.qos})`
        context.log.error({ clientId, err: this.lastError }, 'The MQTT input could not subscribe; no messages arrive on those topics.')
      })
    })
    client.on('close', () => {
      if (this.states[index] === 'stopped') return
      if (this.states[index] === 'connected') context.log.warn({ clientId }, 'The MQTT input lost its connection; it reconnects.')
      this.states[index] = 'disconnected'
      attempt++
      client.options.reconnectPeriod = Math.round(backoffDelay(attempt, config.reconnect.min, config.reconnect.max))
    })
    client.on('error', (err) => {
      // Once per kind of error, not at every reconnect attempt to a broker that is away.
      if (err.message !== this.lastError)
        context.log.warn({ clientId, err: err.message }, 'The MQTT input had a connection error; it reconnects.')
      this.lastError = err.message
    })
  }

  /** One message through the door, tracked so `stop` can wait for it. */
  private take(topic: string, payload: Buffer): Promise<'accepted' | 'deadlettered' | 'stopped'> {
    let paused = false
    const taken = takePayload(
      this.context,
      payload,
      {
        format: this.config.format,
        meta: { input: this.context.name, topic },
        ...(this.config.pipeline === undefined ? {} : { pipeline: this.config.pipeline }),
      },
      {
        signal: this.stopping.signal,
        counts: this.counts,
        onDeferred: (error) => {
          this.lastError = error.message
          if (!paused) this.pausedTakes++
          paused = true
        },
        onResumed: () => {
          if (paused) this.pausedTakes--
          paused = false
        },
      },
    )
      .catch((err: unknown) => {
        // takePayload does not throw; should it, the message is left unacked for the broker.
        this.lastError = asError(err).message
        return 'stopped' as const
      })
      .finally(() => {
        if (paused) this.pausedTakes--
        this.taking.delete(taken)
      })
    this.taking.add(taken)
    return taken
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopping.abort(new Error('the input is stopping'))
    await Promise.allSettled([...this.taking])
    await Promise.allSettled(
      this.clients.map(async (client, i) => {
        this.states[i] = 'stopped'
        // Not forced: a PUBACK just sent is flushed before the DISCONNECT.
        const ended = client.endAsync(false)
        const forced = new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref())
        await Promise.race([ended, forced])
        if (!client.disconnected) await client.endAsync(true)
      }),
    )
  }

  status(): InputStatus {
    const states = this.states
    let state: InputStatus['state']
    if (states.length === 0) state = 'starting'
    else if (states.every((s) => s === 'stopped')) state = 'stopped'
    else if (this.pausedTakes > 0) state = 'paused'
    else if (states.every((s) => s === 'connected')) state = 'connected'
    else if (states.some((s) => s === 'disconnected')) state = 'disconnected'
    else state = 'connecting'
    return {
      name: this.context.name,
      kind: this.kind,
      state,
      counts: { ...this.counts },
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    }
  }
}

export const mqttInput: InputEntry<MqttInputConfig> = {
  name: 'mqtt',
  summary:
    'Subscribes to MQTT topics (MQTT 5, persistent session); a QoS 1/2 message is acked to the broker only once its events are durable.',
  schema,
  create: (config, context) => new MqttInput(config, context),
}
