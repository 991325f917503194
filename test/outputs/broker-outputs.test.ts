// The broker outputs against real brokers started here (docs/design.md §2, Outputs):
// - mqtt: a broker restarted mid-stream loses no message whose write resolved;
// - nats (JetStream) and redis (Streams): an output restarted and handed the same
//   events again, as the queue does after a crash, stores each event once (dedupe by
//   the event id: Nats-Msg-Id, the Redis marker); events a step split keep apart.
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import mqtt from 'mqtt'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { createMqttOutput } from '../../src/pipeline/outputs/mqtt.js'
import { createNatsOutput } from '../../src/pipeline/outputs/nats.js'
import { createRedisOutput } from '../../src/pipeline/outputs/redis.js'
import { compileTemplate } from '../../src/pipeline/outputs/topic-template.js'
import { OutputFailure } from '../../src/pipeline/outputs/failure.js'
import type { Envelope, Output } from '../../src/pipeline/types.js'
import { redisVersion, startMosquitto, startNats, startRedis, stopAllBrokers } from '../support/brokers.js'
import { removeTempDirs, waitFor } from '../support/node-process.js'

const outputs: Output[] = []
afterEach(async () => {
  for (const o of outputs.splice(0)) await o.stop?.()
  await stopAllBrokers()
  removeTempDirs()
})

function envelope(n: number, topic = `sensors/t-${n % 3}`): Envelope {
  return {
    id: `ev-${n}`,
    pipeline: 'p',
    node: 'n1',
    origin: 'n1',
    receivedAt: new Date(0).toISOString(),
    meta: { input: 'mqtt', topic },
    data: { n },
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => envelope(from + i))

/** Write like a pipeline does: retry the same records until the write resolves. */
async function writeUntilDone(output: Output, records: Envelope[]): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await output.write(records)
      return attempt
    } catch (err) {
      if (err instanceof OutputFailure && err.permanent) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

describe('topic templates', () => {
  it('render {{ }} parts as JSONata over the envelope and refuse a value that is not text', async () => {
    expect(await compileTemplate('out/{{ meta.topic }}/{{ data.n }}').render(envelope(4))).toBe('out/sensors/t-1/4')
    expect(compileTemplate('plain/topic').constant).toBe('plain/topic')
    await expect(compileTemplate('x/{{ data.missing }}').render(envelope(1))).rejects.toMatchObject({ permanent: true })
    expect(() => compileTemplate('x/{{ data.( }}')).toThrow(/JSONata/)
  })
})

describe('the mqtt output', () => {
  it('loses nothing whose write resolved when the broker restarts mid-stream', async () => {
    const broker = await startMosquitto({ persistence: true })
    // A persistent subscriber, away meanwhile: what the broker acked to the output waits in
    // its session, across the broker's restart (saved on SIGTERM).
    const sinkOptions = {
      clientId: 'sink',
      clean: false,
      protocolVersion: 5 as const,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 100,
    }
    const first = await mqtt.connectAsync(broker.url, sinkOptions)
    await first.subscribeAsync('out/#', { qos: 1 })
    await first.endAsync()

    const output = createMqttOutput({
      url: broker.url,
      topic: 'out/{{ meta.topic }}',
      qos: 1,
      retain: false,
      envelope: true,
      clientId: 'out',
      timeout: 2_000,
    })
    outputs.push(output)
    await output.start?.()
    const resolved = new Set<string>()
    let retried = 0
    let restarted: Promise<void> | undefined
    let batchesAfterRestart = -1
    for (let batch = 0; batch < 60; batch++) {
      // Not awaited: the broker goes away while writes are in flight.
      if (batch === 20) restarted = broker.restart('SIGTERM').then(() => void (batchesAfterRestart = 0))
      const records = range(batch * 20, batch * 20 + 20)
      retried += (await writeUntilDone(output, records)) - 1
      for (const r of records) resolved.add(r.id)
      if (batchesAfterRestart >= 0) batchesAfterRestart++
    }
    await restarted
    // The broker was back before the last writes: they went through a reconnected client.
    expect(batchesAfterRestart).toBeGreaterThan(0)

    const seen = new Map<string, number>()
    const keys = new Set<string>()
    const sink = mqtt.connect(broker.url, sinkOptions)
    sink.on('message', (topic, payload, packet) => {
      const e = JSON.parse(payload.toString()) as Envelope
      expect(topic).toBe(`out/${e.meta!.topic}`)
      keys.add(String(packet.properties?.userProperties?.['binge-id']))
      seen.set(e.id, (seen.get(e.id) ?? 0) + 1)
    })
    sink.on('error', () => {})
    await waitFor(() => [...resolved].every((id) => seen.has(id)), {
      what: 'every resolved write at the subscriber',
      timeoutMs: 30_000,
    }).catch(() => {})
    const lost = [...resolved].filter((id) => !seen.has(id))
    console.log(
      `mqtt output across a broker restart: resolved ${resolved.size}, received ${seen.size}, lost ${lost.length}, writes retried ${retried}`,
    )
    expect(lost).toEqual([])
    // Each message says which record it is, for a consumer that drops copies.
    expect(keys.has('ev-0') && keys.has('ev-1199')).toBe(true)
    await sink.endAsync(true)
  }, 120_000)
})

describe('the nats output (JetStream)', () => {
  it('stores each event once across an output restart, and keeps split events apart', async () => {
    const server = await startNats()
    const nc = await connect({ servers: server.url })
    const jsm = await jetstreamManager(nc)
    await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] })
    const config = {
      url: [server.url],
      subject: 'events.{{ pipeline }}.{{ $replace(meta.topic, "/", "_") }}',
      stream: 'EVENTS',
      envelope: true,
      timeout: 5_000,
    }

    const first = createNatsOutput(config)
    outputs.push(first)
    await writeUntilDone(first, range(0, 150))
    await first.stop?.()
    // "Restarted": a new output, handed again what the queue had in flight, then more.
    const second = createNatsOutput(config)
    outputs.push(second)
    await writeUntilDone(second, range(100, 300))
    // A step split ev-0 into two records: both are kept (ev-0 was stored already, ev-0/1 is new).
    await writeUntilDone(second, [envelope(0), { ...envelope(0), data: { n: 0, part: 2 } }])

    const info = await jsm.streams.info('EVENTS')
    expect(info.state.messages).toBe(301)
    const ids = new Set<string>()
    for (let seq = 1; seq <= 301; seq++) {
      const msg = await jsm.streams.getMessage('EVENTS', { seq })
      ids.add(msg!.header.get('Nats-Msg-Id'))
    }
    expect(ids.size).toBe(301)
    expect(ids.has('ev-0/1')).toBe(true)
    const last = await jsm.streams.getMessage('EVENTS', { seq: 301 })
    expect(last!.subject).toBe('events.p.sensors_t-0')
    await nc.close()
  }, 60_000)

  it('fails a write, to be retried, when no stream takes the subject', async () => {
    const server = await startNats()
    const output = createNatsOutput({ url: [server.url], subject: 'nowhere.x', envelope: true, timeout: 2_000 })
    outputs.push(output)
    await expect(output.write([envelope(1)])).rejects.toMatchObject({ permanent: false })
  }, 30_000)
})

describe('the redis output (Streams)', () => {
  it('stores each event once across an output restart, the id as a field', async () => {
    const server = await startRedis({ appendonly: true })
    const config = { url: server.url, stream: 'events:{{ pipeline }}', envelope: false, dedupeWindow: 600_000, timeout: 5_000 }
    const first = createRedisOutput(config)
    outputs.push(first)
    await writeUntilDone(first, range(0, 150))
    await first.stop?.()
    const second = createRedisOutput(config)
    outputs.push(second)
    await writeUntilDone(second, range(100, 300))
    await writeUntilDone(second, [envelope(0), { ...envelope(0), data: { n: 0, part: 2 } }])

    const client = createClient({ url: server.url })
    await client.connect()
    const entries = (await client.xRange('events:p', '-', '+')) ?? []
    expect(entries.length).toBe(301)
    const ids = entries.map((e) => e.message.id)
    expect(new Set(ids).size).toBe(301)
    expect(entries[0]!.message).toEqual({ id: 'ev-0', body: '{"n":0}' })
    expect(entries.at(-1)!.message).toEqual({ id: 'ev-0/1', body: '{"n":0,"part":2}' })

    // The control: the same writes without dedupe store the 50 resent events and ev-0 twice.
    const plain = { ...config, stream: 'plain', dedupeWindow: 0 }
    const third = createRedisOutput(plain)
    outputs.push(third)
    await writeUntilDone(third, range(0, 150))
    await writeUntilDone(third, range(100, 300))
    await writeUntilDone(third, [envelope(0), { ...envelope(0), data: { n: 0, part: 2 } }])
    expect(await client.xLen('plain')).toBe(352)
    await client.close()
  }, 60_000)

  it('waits for the AOF fsync with waitAof, or says for good that this Redis cannot', async () => {
    const server = await startRedis({ appendonly: true })
    const output = createRedisOutput({
      url: server.url,
      stream: 's',
      envelope: true,
      dedupeWindow: 0,
      waitAof: { local: 1, replicas: 0 },
      timeout: 5_000,
    })
    outputs.push(output)
    const [major, minor] = redisVersion()
    if (major! > 7 || (major === 7 && minor! >= 2)) {
      await output.write([envelope(1)])
    } else {
      await expect(output.write([envelope(1)])).rejects.toMatchObject({ permanent: true, message: expect.stringMatching(/7\.2/) })
    }
  }, 30_000)
})
