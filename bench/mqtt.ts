// The MQTT ingest benchmark (issue 12): QoS 1 messages taken by a durable node's `mqtt`
// input (each acked only once durable), against the same mosquitto delivering the same
// messages to a subscriber that does nothing but ack, in the same run.
//
// Each run first makes the subscriber's persistent session (subscribe, disconnect),
// then publishes BENCH_MQTT_MESSAGES messages while it is away, so the broker holds them
// all, and times how long the subscriber takes to receive them once it connects: the
// publisher's speed never enters the figure. The node runs in this process with a
// durable queue (sync batch, no pipelines: its workers drain it meanwhile). It prints
// labelled lines (events/s, the ratio to the plain subscriber) and one JSON line. Env:
// BENCH_MQTT_MESSAGES (default 50000), BENCH_MQTT_CONNECTIONS (comma list, default
// 1,4,16), BENCH_MQTT_BYTES (payload size, default 200), BENCH_MQTT_INFLIGHT (the
// input's inFlight; default: its default).
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { parseConfig } from '../src/config/index.js'
import type { InputStatus } from '../src/inputs/types.js'
import { silentLogger } from '../src/log.js'
import { BingeNode } from '../src/node.js'
import { Cleanup, envInt, freePort, eventOfSize, fmt, line, makeTempRoot, nodeConfigText, sleep, waitUntil } from './support.js'

const messages = envInt('BENCH_MQTT_MESSAGES', 50_000)
const payloadBytes = envInt('BENCH_MQTT_BYTES', 200)
const connectionCounts = (process.env.BENCH_MQTT_CONNECTIONS ?? '1,4,16').split(',').map(Number)
/** The input's ack window (default: the input's default). */
const inFlight = process.env.BENCH_MQTT_INFLIGHT === undefined ? undefined : envInt('BENCH_MQTT_INFLIGHT', 256)

async function startMosquitto(cleanup: Cleanup, dir: string): Promise<string> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  await writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n`)
  const child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' })
  const failed = new Promise<never>((_, reject) =>
    child.once('error', () => reject(new Error('mosquitto is not installed: install the Debian package "mosquitto"'))),
  )
  cleanup.add(`stop mosquitto (pid ${child.pid})`, () => void child.kill('SIGTERM'))
  const url = `mqtt://127.0.0.1:${port}`
  await Promise.race([
    failed,
    waitUntil(
      'mosquitto to listen',
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1')
          s.once('connect', () => resolve(s.destroy() === s))
          s.once('error', () => resolve(false))
        }),
      10_000,
    ),
  ])
  return url
}

/** Publish `count` QoS 1 messages, at most 16 awaiting their PUBACK (mosquitto's receive maximum is 20). */
async function publish(url: string, topic: string, count: number): Promise<void> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clean: true })
  const body = JSON.stringify(eventOfSize(payloadBytes))
  let next = 0
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        next++
        await client.publishAsync(topic, body, { qos: 1 })
      }
    }),
  )
  await client.endAsync()
}

/** The plain subscriber: MQTT.js acks each message as it arrives. Returns messages/s. */
async function plainSubscriber(url: string, connections: number): Promise<number> {
  const topic = `plain/${connections}`
  const filter = connections > 1 ? `$share/plain/${topic}` : topic
  const options = (i: number) => ({
    protocolVersion: 5 as const,
    clientId: `plain-${connections}-${i}`,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
  })
  for (let i = 0; i < connections; i++) {
    const c = await mqtt.connectAsync(url, options(i))
    await c.subscribeAsync(filter, { qos: 1 })
    await c.endAsync()
  }
  await publish(url, topic, messages)
  let received = 0
  const started = performance.now()
  const clients = await Promise.all(
    Array.from({ length: connections }, async (_, i) => {
      const c = mqtt.connect(url, options(i))
      c.on('message', () => void received++)
      return c
    }),
  )
  await waitUntil('the plain subscriber to receive everything', () => received >= messages, 600_000, 5)
  const seconds = (performance.now() - started) / 1000
  await Promise.all(clients.map((c) => c.endAsync()))
  return messages / seconds
}

/** A durable node's mqtt input. Returns events/s (accepted, i.e. durable and acked). */
async function nodeInput(cleanup: Cleanup, root: string, url: string, connections: number): Promise<number> {
  const topic = `node/${connections}`
  const setup = {
    id: `bench-mqtt-${connections}`,
    dataDir: join(root, `node-${connections}`),
    queue: { sync: 'batch' },
  }
  const input = { mqtt: { url, topics: [topic], qos: 1, connections, clientId: `node-${connections}`, ...(inFlight ? { inFlight } : {}) } }
  const withInput = JSON.stringify({ ...JSON.parse(nodeConfigText(setup)), inputs: [input] })
  const status = (node: BingeNode) => (node.stats() as unknown as { inputs: InputStatus[] }).inputs[0]!
  // First run: make the sessions and subscriptions, then go away.
  const first = new BingeNode(parseConfig(withInput, join(root, `n${connections}.yaml`)), { log: silentLogger, processMetrics: false })
  await first.start()
  await waitUntil('the input to subscribe', () => status(first).state === 'connected', 30_000)
  await first.stop()
  await publish(url, topic, messages)
  const node = new BingeNode(parseConfig(withInput, join(root, `n${connections}.yaml`)), { log: silentLogger, processMetrics: false })
  const stop = cleanup.add(`stop node ${setup.id}`, () => node.stop()).now
  // Timed from the input's start, as the plain subscriber's from its connect: the store is open by then.
  await node.start()
  const started = performance.now()
  await waitUntil('the node to take everything', () => status(node).counts.accepted >= messages, 600_000, 5)
  const seconds = (performance.now() - started) / 1000
  await stop()
  return messages / seconds
}

async function main(): Promise<void> {
  const cleanup = new Cleanup()
  process.once('SIGINT', () => void cleanup.runAll().then(() => process.exit(130)))
  try {
    const root = await makeTempRoot(cleanup)
    const url = await startMosquitto(cleanup, root)
    process.stdout.write(`\n== MQTT QoS 1 ingest: ${fmt.int(messages)} messages of ${payloadBytes} bytes, held by mosquitto, then taken\n`)
    const results: Array<{ connections: number; plainPerSecond: number; nodePerSecond: number; ratio: number }> = []
    for (const connections of connectionCounts) {
      const plainPerSecond = await plainSubscriber(url, connections)
      await sleep(200)
      const nodePerSecond = await nodeInput(cleanup, root, url, connections)
      const ratio = nodePerSecond / plainPerSecond
      results.push({ connections, plainPerSecond, nodePerSecond, ratio })
      line(`plain subscriber, ${connections} connection(s)`, `${fmt.int(plainPerSecond)} msg/s`)
      line(`durable node (sync batch), ${connections} conn.`, `${fmt.int(nodePerSecond)} events/s  ratio ${fmt.ratio(ratio)}`)
    }
    process.stdout.write(`${JSON.stringify({ bench: 'mqtt', messages, payloadBytes, results })}\n`)
  } finally {
    await cleanup.runAll()
  }
}

await main()
