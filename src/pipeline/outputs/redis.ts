// redis: appends each event to a Redis stream (`XADD`, fields `id` = the record's key
// and `body` = the envelope or data) and resolves a write once Redis answered every one.
//
// What each setting guarantees (a standalone Redis; not Redis Cluster):
// - default: the XADD reply means the entry is in Redis's memory. With `appendonly yes`
//   and the default `appendfsync everysec`, a power cut or kill -9 of Redis can lose
//   about the last second; without AOF or RDB, a restart loses everything.
// - `waitAof: { local: 1 }`: after its XADDs the write sends `WAITAOF 1 <replicas>
//   <timeout>`, which answers once the AOF holding them is fsync'd (and `replicas`
//   replicas fsync'd theirs): a write that resolved survives a power cut. Needs Redis
//   7.2+ with `appendonly yes`; on an older server every write fails for good, saying
//   so (there, `appendfsync always` on the server gives the same: each reply follows an
//   fsync).
// - dedupe (`dedupeWindow`, default 10 minutes; 0 turns it off): the XADD runs in one
//   Lua script with a `SET <stream>:binge-id:<key> <entry id> PX <window>` marker, and a
//   record whose marker exists is not added again. So a retry, or the redelivery of an
//   event whose write succeeded just before binge crashed, adds one entry, as long as it
//   comes within the window. The markers cost one small key per event for the window.
//
// node-redis reconnects for ever with backoff; a write waits at most `timeout`.
import { createClient } from 'redis'
import type { z } from 'zod'
import { asError } from '../../errors.js'
import { bool, int, strict, text } from '../../schema/fields.js'
import { durationSchema } from '../../util/duration.js'
import type { OutputEntry } from '../registry-types.js'
import type { Output } from '../types.js'
import { OutputFailure } from './failure.js'
import { keyedRecords } from './keyed-records.js'
import { compileTemplate, templateField } from './topic-template.js'

// KEYS[1] the stream, KEYS[2] the marker; ARGV: key, body, window ms, maxlen ('' for none).
const addOnce = `
local seen = redis.call('GET', KEYS[2])
if seen then return {0, seen} end
local args = {'XADD', KEYS[1]}
if ARGV[4] ~= '' then
  table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[4])
end
table.insert(args, '*'); table.insert(args, 'id'); table.insert(args, ARGV[1]); table.insert(args, 'body'); table.insert(args, ARGV[2])
local entry = redis.call(unpack(args))
redis.call('SET', KEYS[2], entry, 'PX', ARGV[3])
return {1, entry}
`

const schema = strict({
  url: text()
    .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://host:port')
    .describe('the server: `redis://[user:password@]host:6379[/db]`, `rediss://` for TLS'),
  stream: templateField('a stream key').describe(
    'the stream key; `{{ expr }}` parts are JSONata over the envelope, e.g. `events:{{ pipeline }}`',
  ),
  envelope: bool().default(true).describe('the `body` field holds the envelope; false: the event data alone'),
  maxLen: int(1).optional().describe('trim the stream to about this many entries (`MAXLEN ~`)'),
  dedupeWindow: durationSchema.default(600_000).describe('how long a record key is remembered so a resend is not added again; 0: off'),
  waitAof: strict({
    local: int(0, 1).default(1).describe("1: wait until the local AOF is fsync'd"),
    replicas: int(0).default(0).describe("replicas that must have fsync'd their AOF too"),
  })
    .optional()
    .describe("after the XADDs, `WAITAOF`: the write resolves only once they are fsync'd (Redis 7.2+, `appendonly yes`)"),
  timeout: durationSchema.default(5_000).describe('longest a write waits for Redis; past it, it is retried'),
})

export type RedisOutputConfig = z.output<typeof schema>

export function createRedisOutput(config: RedisOutputConfig): Output {
  const template = compileTemplate(config.stream)
  const client = createClient({
    url: config.url,
    socket: { connectTimeout: config.timeout, reconnectStrategy: (retries) => Math.min(30_000, 100 * 2 ** Math.min(retries, 9)) },
  })
  // Errors surface through the writes (and node-redis reconnects); without a listener an 'error' would throw.
  client.on('error', () => {})
  let connecting: Promise<unknown> | undefined

  const open = async (): Promise<void> => {
    connecting ??= client.connect().catch((err: unknown) => {
      connecting = undefined
      throw err
    })
    await connecting
  }

  const add = async (stream: string, key: string, body: string): Promise<void> => {
    const options = { timeout: config.timeout }
    if (config.dedupeWindow === 0) {
      const args = [
        'XADD',
        stream,
        ...(config.maxLen === undefined ? [] : ['MAXLEN', '~', String(config.maxLen)]),
        '*',
        'id',
        key,
        'body',
        body,
      ]
      await client.sendCommand(args, options)
      return
    }
    const marker = `${stream}:binge-id:${key}`
    await client.sendCommand(
      ['EVAL', addOnce, '2', stream, marker, key, body, String(config.dedupeWindow), String(config.maxLen ?? '')],
      options,
    )
  }

  const waitAof = async (): Promise<void> => {
    const wanted = config.waitAof
    if (!wanted) return
    let reply: unknown
    try {
      reply = await client.sendCommand(['WAITAOF', String(wanted.local), String(wanted.replicas), String(config.timeout)], {
        timeout: config.timeout + 1_000,
      })
    } catch (err) {
      const message = asError(err).message
      if (/unknown command/i.test(message))
        throw new OutputFailure(
          'WAITAOF is not known to this Redis (it needs 7.2 or later); drop waitAof and set appendfsync always on the server',
          true,
          err,
        )
      if (/appendonly/i.test(message)) throw new OutputFailure(`WAITAOF refused: ${message} (the server needs appendonly yes)`, true, err)
      throw err
    }
    const [local, replicas] = reply as [number, number]
    if (local < wanted.local || replicas < wanted.replicas)
      throw new OutputFailure(
        `WAITAOF: fsync'd by ${local} local and ${replicas} replicas within ${config.timeout} ms, wanted ${wanted.local} and ${wanted.replicas}`,
        false,
      )
  }

  return {
    kind: 'redis',
    async write(records) {
      const keyed = keyedRecords(records, config.envelope)
      try {
        await open()
        await Promise.all(keyed.map(async (r) => add(await template.render(r.envelope), r.key, r.body)))
        await waitAof()
      } catch (err) {
        if (err instanceof OutputFailure) throw err
        throw new OutputFailure(`Redis XADD to ${config.stream} failed: ${asError(err).message}`, false, err)
      }
    },
    async stop() {
      connecting = undefined
      if (client.isOpen) await client.close().catch(() => client.destroy())
    },
  }
}

export const redisOutput: OutputEntry<RedisOutputConfig> = {
  name: 'redis',
  summary:
    'Appends events to a Redis stream (XADD, the event id as a field), deduplicated by id; optional WAITAOF waits for the AOF fsync.',
  schema,
  takesEnvelopes: true,
  create: (config) => createRedisOutput(config),
}
