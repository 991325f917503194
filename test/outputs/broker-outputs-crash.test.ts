// kill -9 of a real node, three times, while clients POST events and its pipeline
// writes them to a real JetStream stream and a real Redis stream. An event written but
// not yet acked in the queue at a kill is written again after the restart; the
// outputs' dedupe by event id (Nats-Msg-Id, the Redis marker) must store it once: every
// acknowledged event exactly once in each stream. A third output, Redis without dedupe
// (`dedupeWindow: 0`), is the control: it shows the copies the kills did cause.
import path from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { startNats, startRedis, stopAllBrokers } from '../support/brokers.js'
import { cleanUpNodesAfterEach, printNodeOnFailure } from '../support/hooks.js'
import { NodeProcess, makeTempDir, startIngestClients, waitFor, writeConfig } from '../support/node-process.js'

const watched = printNodeOnFailure()
cleanUpNodesAfterEach()
afterEach(() => stopAllBrokers())

const KILLS = 3

type Envelope = { id: string; data: { cid: string } }

function counts(cids: string[]): Map<string, number> {
  const map = new Map<string, number>()
  for (const cid of cids) map.set(cid, (map.get(cid) ?? 0) + 1)
  return map
}

describe('the nats and redis outputs under kill -9 of the node', () => {
  it('store every acknowledged event exactly once', async () => {
    const nats = await startNats()
    const redis = await startRedis({ appendonly: true })
    const nc = await connect({ servers: nats.url })
    const jsm = await jetstreamManager(nc)
    await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] })
    const client = createClient({ url: redis.url })
    await client.connect()

    const dir = makeTempDir('binge-broker-crash-')
    const configFile = writeConfig(dir, {
      node: { id: 'broker-crash', dataDir: path.join(dir, 'data') },
      http: { listen: '127.0.0.1:0' },
      workers: 4,
      pipelines: {
        all: {
          outputs: [
            { nats: { url: nats.url, subject: 'events.{{ pipeline }}', stream: 'EVENTS' } },
            { redis: { url: redis.url, stream: 'events' } },
            { redis: { url: redis.url, stream: 'control', dedupeWindow: 0 } },
          ],
          onFail: { retry: { attempts: 100, backoff: '50ms', maxBackoff: '1s' } },
        },
      },
    })
    let node = await NodeProcess.start(configFile, { label: 'broker-crash' })
    watched.node = node
    let target: string | undefined = node.url
    const clients = startIngestClients({ clients: 4, target: () => target, prefix: 'b' })
    const inFlightAtKills: number[] = []
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        const before = await client.xLen('control')
        await waitFor(async () => (await client.xLen('control')) >= before + 400, { what: 'the outputs to grow', timeoutMs: 60_000 })
        const stats = await node.stats()
        inFlightAtKills.push(stats.queue.inflight)
        target = undefined
        await node.kill('SIGKILL')
        node = await NodeProcess.start(configFile, { label: `broker-crash-${kill + 1}` })
        watched.node = node
        target = node.url
      }
    } finally {
      await clients.stop()
    }
    await node.waitDrained()
    const acked = clients.ledger.acked

    const info = await jsm.streams.info('EVENTS')
    const natsCids: string[] = []
    for (let seq = 1; seq <= info.state.last_seq; seq++) {
      const msg = await jsm.streams.getMessage('EVENTS', { seq })
      if (msg) natsCids.push((msg.json() as Envelope).data.cid)
    }
    const fromRedis = async (stream: string) =>
      ((await client.xRange(stream, '-', '+')) ?? []).map((e) => (JSON.parse(e.message.body!) as Envelope).data.cid)
    const streams = { nats: counts(natsCids), redis: counts(await fromRedis('events')), control: counts(await fromRedis('control')) }
    const report = Object.fromEntries(
      Object.entries(streams).map(([name, seen]) => {
        const lost = [...acked].filter((cid) => !seen.has(cid)).length
        const copies = [...seen.values()].reduce((sum, n) => sum + n - 1, 0)
        return [name, { lost, copies }]
      }),
    )
    console.log(
      `broker outputs under kill -9: acked ${acked.size}, in flight at the kills ${inFlightAtKills.join(', ')}; ` +
        Object.entries(report)
          .map(([name, r]) => `${name}: lost ${r.lost}, extra copies ${r.copies}`)
          .join('; '),
    )
    expect(report.nats).toEqual({ lost: 0, copies: 0 })
    expect(report.redis).toEqual({ lost: 0, copies: 0 })
    expect(report.control!.lost).toBe(0)
    // Nothing but acknowledged events (and those whose answer the kill cut off) in the streams.
    const known = new Set([...acked, ...clients.ledger.unknown])
    for (const seen of [streams.nats, streams.redis]) for (const cid of seen.keys()) expect(known.has(cid)).toBe(true)
    await client.close()
    await nc.close()
  }, 300_000)
})
