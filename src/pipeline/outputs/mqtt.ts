// mqtt: publishes each event (its envelope, or `data`) to an MQTT broker (MQTT 5,
// MQTT.js). The topic may depend on the event (`out/{{ meta.topic }}`, topic-template.ts).
// A write resolves once the broker acknowledged every message of it: PUBACK for QoS 1,
// PUBCOMP for QoS 2; QoS 0 only once the message was written to the socket (a crash or a
// broker restart can lose it). Each message carries the record's key as the MQTT 5 user
// property `binge-id`, so a consumer can drop the copies a retry sends.
//
// Design constraints:
// - Connects in the background and reconnects for ever with backoff; a write made while
//   the broker is away waits for it (MQTT.js resends unacked QoS 1/2 messages after a
//   reconnect) up to `timeout`, then fails and is retried per onFail. So a broker restart
//   loses nothing acked; a message may arrive twice (at least once).
// - A PUBACK with a reason code that says the broker will never take it (not authorized,
//   bad topic, bad payload format) is a permanent failure; others are retried.
import { randomBytes } from 'node:crypto'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { z } from 'zod'
import { asError } from '../../errors.js'
import { bool, int, strict, text } from '../../schema/fields.js'
import { backoffDelay } from '../../util/backoff.js'
import { durationSchema } from '../../util/duration.js'
import { brokerOptions } from '../../util/mqtt-url.js'
import type { OutputEntry } from '../registry-types.js'
import type { Output } from '../types.js'
import { OutputFailure } from './failure.js'
import { keyedRecords } from './keyed-records.js'
import { compileTemplate, templateField } from './topic-template.js'

/** PUBACK/PUBREC reason codes that no retry changes: not authorized, topic name invalid, payload format invalid. */
const permanentReasons = new Set([0x87, 0x90, 0x99])

const schema = strict({
  url: text()
    .regex(/^(mqtts?|tcp|tls|ssl):\/\/[^/]+/, 'expected mqtt://host:port or mqtts://host:port')
    .describe('the broker: `mqtt://host:1883`, or `mqtts://host:8883` for TLS'),
  topic: templateField('a topic').describe('the topic; `{{ expr }}` parts are JSONata over the envelope, e.g. `out/{{ meta.topic }}`'),
  qos: int(0, 2).default(1).describe('0: resolves once written to the socket (may be lost); 1: on PUBACK; 2: on PUBCOMP'),
  retain: bool().default(false).describe('publish retained messages'),
  envelope: bool().default(true).describe('publish the envelope; false: the event data alone'),
  clientId: text().min(1).optional().describe('MQTT client id; default: `<node>-<pipeline>-out-<random>`'),
  username: text().optional().describe('user name, e.g. `${MQTT_USER}`'),
  password: text().optional().describe('password, e.g. `${MQTT_PASSWORD}`'),
  timeout: durationSchema.default(10_000).describe('longest a write waits for the broker (and a reconnect); past it, it is retried'),
})

export type MqttOutputConfig = z.output<typeof schema>

export interface MqttOutputOptions extends MqttOutputConfig {
  clientId: string
}

export function createMqttOutput(config: MqttOutputOptions): Output {
  const template = compileTemplate(config.topic)
  let client: MqttClient | undefined

  const connect = (): MqttClient => {
    const options: IClientOptions = {
      clientId: config.clientId,
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 500,
      connectTimeout: 10_000,
      ...(config.username === undefined ? {} : { username: config.username }),
      ...(config.password === undefined ? {} : { password: config.password }),
    }
    const c = mqtt.connect({ ...brokerOptions(config.url), ...options })
    let attempt = 0
    c.on('connect', () => {
      attempt = 0
      c.options.reconnectPeriod = 500
    })
    c.on('close', () => {
      attempt++
      c.options.reconnectPeriod = Math.round(backoffDelay(attempt, 500, 30_000))
    })
    // Errors surface through the writes; without a listener an 'error' would throw.
    c.on('error', () => {})
    return c
  }

  const publish = async (c: MqttClient, topic: string, body: string, key: string, stopped: Promise<never>, signal: AbortSignal) => {
    const sent = c.publishAsync(topic, body, {
      qos: config.qos as 0 | 1 | 2,
      retain: config.retain,
      properties: { userProperties: { 'binge-id': key } },
    })
    try {
      await Promise.race([sent, stopped])
    } catch (err) {
      const code = (err as { code?: number }).code
      const why = signal.aborted ? `no acknowledgement within ${config.timeout} ms, or stopped` : asError(err).message
      throw new OutputFailure(`MQTT publish to ${topic} failed: ${why}`, typeof code === 'number' && permanentReasons.has(code), err)
    }
  }

  return {
    kind: 'mqtt',
    async start() {
      client ??= connect()
    },
    async write(records, options = {}) {
      client ??= connect()
      const c = client
      const signal = options.signal
        ? AbortSignal.any([options.signal, AbortSignal.timeout(config.timeout)])
        : AbortSignal.timeout(config.timeout)
      const keyed = keyedRecords(records, config.envelope)
      // One listener per write, however many messages it holds.
      let onAbort = () => {}
      const stopped = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason)
        if (signal.aborted) onAbort()
        else signal.addEventListener('abort', onAbort, { once: true })
      })
      stopped.catch(() => {})
      try {
        await Promise.all(keyed.map(async (r) => publish(c, await template.render(r.envelope), r.body, r.key, stopped, signal)))
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    },
    async stop() {
      const c = client
      client = undefined
      if (!c) return
      const ended = c.endAsync(false)
      const late = new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref())
      await Promise.race([ended, late])
      if (!c.disconnected) await c.endAsync(true)
    },
  }
}

export const mqttOutput: OutputEntry<MqttOutputConfig> = {
  name: 'mqtt',
  summary: 'Publishes events to an MQTT broker (QoS 0/1/2, topic per event); a write resolves on the PUBACK (QoS 1) or PUBCOMP (QoS 2).',
  schema,
  takesEnvelopes: true,
  create: (config, context) =>
    createMqttOutput({
      ...config,
      clientId: config.clientId ?? `${context.nodeId}-${context.pipeline}-out-${randomBytes(3).toString('hex')}`,
    }),
}
