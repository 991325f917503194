// nats: publishes each event to a NATS JetStream subject and resolves a write once the
// stream answered every message with its PubAck. Each message carries the record's key
// (the event id, keyed-records.ts) as `Nats-Msg-Id`, so JetStream drops a resend within
// the stream's duplicate window (default 2 minutes): a retry, or the redelivery of an
// event whose write succeeded just before a crash, is stored once.
//
// What a PubAck means: the stream's leader (and, with replicas, a quorum) has the message
// in its store, not that it is on disk. nats-server fsyncs its stream files every 2
// minutes by default; only with `sync_interval: always` in the server's `jetstream`
// block is an acked message fsync'd before the PubAck. A subject no stream captures
// answers "no responders": a failure retried per onFail (a stream may be created later).
//
// Connects on first use and reconnects for ever; a write waits at most `timeout`.
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { type JetStreamClient, jetstream } from '@nats-io/jetstream'
import { z } from 'zod'
import { asError } from '../../errors.js'
import { bool, expected, strict, text } from '../../schema/fields.js'
import { durationSchema } from '../../util/duration.js'
import type { OutputEntry } from '../registry-types.js'
import type { Output } from '../types.js'
import { OutputFailure } from './failure.js'
import { keyedRecords } from './keyed-records.js'
import { compileTemplate, templateField } from './topic-template.js'

const schema = strict({
  url: z
    .union([text(), z.array(text()).min(1)], { error: (i) => expected('a server URL or a list of them', i.input) })
    .describe('the server(s): `nats://host:4222`, or a list')
    .transform((v) => (Array.isArray(v) ? v : [v])),
  subject: templateField('a subject').describe(
    'the subject; `{{ expr }}` parts are JSONata over the envelope, e.g. `events.{{ pipeline }}`',
  ),
  stream: text().min(1).optional().describe('the stream that must store the messages (a PubAck from another stream is refused)'),
  envelope: bool().default(true).describe('publish the envelope; false: the event data alone'),
  user: text().optional().describe('user name, e.g. `${NATS_USER}`'),
  password: text().optional().describe('password, e.g. `${NATS_PASSWORD}`'),
  token: text().optional().describe('auth token, e.g. `${NATS_TOKEN}`'),
  timeout: durationSchema
    .default(5_000)
    .describe('longest a write waits for its PubAcks; past it, it is retried (the resend is deduplicated)'),
})

export type NatsOutputConfig = z.output<typeof schema>

/** JetStream API errors that no retry changes: wrong stream expected, message too big. */
function permanent(err: unknown): boolean {
  const message = asError(err).message
  return /wrong last|expected stream|maximum payload|message size exceeds/i.test(message)
}

export function createNatsOutput(config: NatsOutputConfig): Output {
  const template = compileTemplate(config.subject)
  let connecting: Promise<{ nc: NatsConnection; js: JetStreamClient }> | undefined

  const open = (): Promise<{ nc: NatsConnection; js: JetStreamClient }> => {
    connecting ??= (async () => {
      const nc = await connect({
        servers: config.url,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: config.timeout,
        ...(config.user === undefined ? {} : { user: config.user }),
        ...(config.password === undefined ? {} : { pass: config.password }),
        ...(config.token === undefined ? {} : { token: config.token }),
      })
      return { nc, js: jetstream(nc, { timeout: config.timeout }) }
    })().catch((err: unknown) => {
      connecting = undefined
      throw new OutputFailure(`cannot connect to NATS at ${config.url.join(', ')}: ${asError(err).message}`, false, err)
    })
    return connecting
  }

  return {
    kind: 'nats',
    async write(records) {
      const { js } = await open()
      const keyed = keyedRecords(records, config.envelope)
      await Promise.all(
        keyed.map(async (r) => {
          const subject = await template.render(r.envelope)
          try {
            await js.publish(subject, r.body, {
              msgID: r.key,
              timeout: config.timeout,
              ...(config.stream === undefined ? {} : { expect: { streamName: config.stream } }),
            })
          } catch (err) {
            const message = asError(err).message
            // The client says "not enabled" when nothing answered: most often no stream captures the subject.
            const why = /not enabled|no responders/i.test(message)
              ? `${message} (no stream captures this subject, or JetStream is off)`
              : message
            throw new OutputFailure(`JetStream publish to ${subject} failed: ${why}`, permanent(err), err)
          }
        }),
      )
    },
    async stop() {
      const pending = connecting
      connecting = undefined
      const opened = await pending?.catch(() => undefined)
      await opened?.nc.drain().catch(() => opened.nc.close())
    },
  }
}

export const natsOutput: OutputEntry<NatsOutputConfig> = {
  name: 'nats',
  summary:
    "Publishes events to a NATS JetStream subject; a write resolves on the stream's PubAck, with Nats-Msg-Id = the event id so resends are dropped.",
  schema,
  takesEnvelopes: true,
  create: (config) => createNatsOutput(config),
}
