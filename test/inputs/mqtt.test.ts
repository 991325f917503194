// The mqtt input on an in-process node against a real mosquitto (docs/design.md §2,
// `inputs:`): the topic in meta, a payload that never parses dead-lettered with its
// topic while the subscription goes on, QoS 2, the hard cap (nothing acked, the same
// messages retried until there is room), and what /stats and /metrics show.
import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { startMosquitto, stopAllBrokers } from '../support/brokers.js'
import { startWebhook } from '../support/mesh.js'
import { removeTempDirs } from '../support/node-process.js'
import { startTempNode, type TempNode, waitFor } from '../support/temp-node.js'
import type { InputStatus } from '../../src/inputs/types.js'
import { readFileSync } from 'node:fs'
import { readJsonLines as lines } from '../support/json-lines.js'

const nodes: TempNode[] = []
const clients: mqtt.MqttClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true)
  for (const n of nodes.splice(0)) await n.close()
  await stopAllBrokers()
  removeTempDirs()
})

async function publisher(url: string): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clean: true })
  clients.push(client)
  return client
}

function inputStatus(t: TempNode): InputStatus {
  return (t.node.stats() as unknown as { inputs: InputStatus[] }).inputs[0]!
}

async function nodeWithInput(url: string, input: string, rest: string, queue?: string): Promise<TempNode> {
  const t = await startTempNode(`inputs:\n  - mqtt: { url: "${url}", ${input} }\n${rest}`, {
    id: `mqtt-${nodes.length}`,
    ...(queue ? { queue } : {}),
  })
  nodes.push(t)
  await waitFor(() => inputStatus(t).state === 'connected', { what: 'the input to connect' })
  return t
}

describe('the mqtt input', () => {
  it('dead-letters a payload that is not a JSON object, with its topic, and goes on', async () => {
    const broker = await startMosquitto()
    const t = await nodeWithInput(
      broker.url,
      'topics: ["sensors/#"], qos: 1',
      'pipelines:\n  all:\n    outputs: [{ file: { path: $DIR/out.jsonl } }]',
    )
    const pub = await publisher(broker.url)
    await pub.publishAsync('sensors/a', '{"n":1}', { qos: 1 })
    await pub.publishAsync('sensors/bad', 'not json {', { qos: 1 })
    await pub.publishAsync('sensors/bad', '[1, 2]', { qos: 1 })
    await pub.publishAsync('sensors/b', '[{"n":2},{"n":3}]', { qos: 1 })
    const out = await waitFor(() => (lines(`${t.dir}/out.jsonl`).length === 3 ? lines(`${t.dir}/out.jsonl`) : undefined), {
      what: 'three events',
    })
    expect(out.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
    expect(out[0]!.meta).toEqual({ input: 'mqtt', topic: 'sensors/a' })
    const letters = await t.node.queue.listDeadletter(10)
    expect(letters).toHaveLength(2)
    expect(letters.map((l) => l.event.data.raw).sort()).toEqual(['[1, 2]', 'not json {'])
    for (const l of letters) {
      expect(l.pipeline).toBe('input:mqtt')
      expect(l.event.meta).toEqual({ input: 'mqtt', topic: 'sensors/bad' })
    }
    expect(letters.find((l) => l.event.data.raw === 'not json {')!.error).toMatch(/malformed JSON/)
    expect(inputStatus(t)).toMatchObject({ state: 'connected', counts: { received: 4, accepted: 3, deadLettered: 2, deferred: 0 } })
    const metrics = await (await fetch(`${t.url}/metrics`)).text()
    expect(metrics).toMatch(/binge_input_connected\{input="mqtt",kind="mqtt"[^}]*\} 1/)
    expect(metrics).toMatch(/binge_input_payloads_total\{input="mqtt",kind="mqtt",outcome="deadlettered"[^}]*\} 2/)
    expect(metrics).toMatch(/binge_input_events_accepted_total\{input="mqtt",kind="mqtt"[^}]*\} 3/)
  }, 60_000)

  it('takes QoS 2 messages once each, acknowledged only once durable', async () => {
    const broker = await startMosquitto()
    const t = await nodeWithInput(
      broker.url,
      'topics: ["q2/#"], qos: 2',
      'pipelines:\n  all:\n    outputs: [{ file: { path: $DIR/out.jsonl } }]',
    )
    const pub = await publisher(broker.url)
    // Ten at a time: more than mosquitto's receive maximum (20) in flight makes it drop the publisher.
    for (let i = 0; i < 50; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => pub.publishAsync(`q2/${i + k}`, JSON.stringify({ i: i + k }), { qos: 2 })))
    }
    const out = await waitFor(() => (lines(`${t.dir}/out.jsonl`).length >= 50 ? lines(`${t.dir}/out.jsonl`) : undefined), {
      what: '50 events',
    })
    expect(new Set(out.map((e) => (e.data as { i: number }).i)).size).toBe(50)
    expect(out).toHaveLength(50)
  }, 60_000)

  it('past the hard cap acks nothing, holds the subscription and takes every message once there is room', async () => {
    const broker = await startMosquitto()
    const hook = await startWebhook({ held: true })
    const t = await nodeWithInput(
      broker.url,
      'topics: ["cap/#"], qos: 1, connections: 2',
      `pipelines:\n  all:\n    outputs: [{ http: { url: "${hook.url}" } }]`,
      'maxEvents: 10, highWaterMark: 8, lowWaterMark: 4',
    )
    const pub = await publisher(broker.url)
    for (let i = 0; i < 40; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, k) => pub.publishAsync(`cap/${k % 4}`, JSON.stringify({ cid: `c-${i + k}` }), { qos: 1 })),
      )
    }
    await waitFor(() => inputStatus(t).state === 'paused' && inputStatus(t).counts.deferred > 0, { what: 'the input to pause at the cap' })
    expect(t.node.queue.depth().unprocessed + t.node.queue.depth().inflight).toBeLessThanOrEqual(10)
    expect(inputStatus(t).counts.accepted).toBeLessThan(40)
    hook.release()
    await waitFor(() => hook.counts.size === 40, { what: 'all 40 at the webhook', timeoutMs: 60_000 })
    expect([...hook.counts.values()].every((n) => n === 1)).toBe(true)
    await waitFor(() => inputStatus(t).state === 'connected', { what: 'the input to resume' })
  }, 90_000)

  it('connects over mqtts:// with a private CA and a password from the environment, and says why when refused', async () => {
    const broker = await startMosquitto({ tls: true, users: { binge: 'sesame', sensor: 'pub' } })
    process.env.BINGE_TEST_MQTT_PASSWORD = 'sesame'
    const input = `topics: ["tls/#"], username: binge, password: "\${BINGE_TEST_MQTT_PASSWORD}", ca: "${broker.cert}"`
    const t = await nodeWithInput(broker.url, input, 'pipelines:\n  all:\n    outputs: [{ file: { path: $DIR/out.jsonl } }]')
    const pub = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      username: 'sensor',
      password: 'pub',
      ca: readFileSync(broker.cert!),
    })
    clients.push(pub)
    await pub.publishAsync('tls/a', '{"secure":true}', { qos: 1 })
    const out = await waitFor(() => lines(`${t.dir}/out.jsonl`)[0], { what: 'the event' })
    expect(out).toMatchObject({ data: { secure: true }, meta: { topic: 'tls/a' } })

    // A wrong password: never connected, and the status says why.
    const refused = await startTempNode(
      `inputs:\n  - mqtt: { url: "${broker.url}", topics: ["tls/#"], username: binge, password: wrong, ca: "${broker.cert}" }\n`,
      { id: 'mqtt-refused' },
    )
    nodes.push(refused)
    const status = await waitFor(() => (inputStatus(refused).lastError ? inputStatus(refused) : undefined), { what: 'a connection error' })
    expect(status.state).not.toBe('connected')
    expect(status.lastError).toMatch(/not authorized|bad user name or password/i)
  }, 60_000)
})
