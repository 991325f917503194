// SIGTERM during steady ingest (docs/design.md §1, `binge start`): the node stops
// accepting, finishes or returns its in-flight work, closes, and exits 0; every event
// it answered 202 is then either in the output already or still in its queue, which a
// restart drains. A clean stop writes nothing twice.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { silentLogger } from '../../src/log.js'
import { BingeNode } from '../../src/node.js'
import { cleanUpNodesAfterEach, printNodeOnFailure } from '../support/hooks.js'
import { startWebhook } from '../support/mesh.js'
import { compareDelivery, makeTempDir, NodeProcess, readOutput, startIngestClients, waitFor, writeConfig } from '../support/node-process.js'

// A webhook that answers each POST after 30 ms: with one worker it keeps processing
// slower than the clients post, so the stop always meets a backlog.
let slowHook: Server | undefined
const watched = printNodeOnFailure()
cleanUpNodesAfterEach({
  after: async () => {
    await new Promise((resolve) => (slowHook ? slowHook.close(resolve) : resolve(undefined)))
    slowHook = undefined
  },
})

describe('graceful stop', () => {
  // Keep-alive clients (fetch, SDKs) keep their sockets busy through the stop, new
  // connections per request (curl) do not: the two shapes of "steady ingest" a stop meets.
  it.each([
    { clients: 'keep-alive', keepAlive: true },
    { clients: 'connection-per-request', keepAlive: false },
  ])('SIGTERM during steady ingest from $clients clients exits 0 and loses nothing acknowledged', async ({ keepAlive }) => {
    const dir = makeTempDir('binge-sigterm-')
    const outFile = path.join(dir, 'out', 'all.jsonl')
    slowHook = createServer((req, res) => {
      req.resume()
      req.on('end', () => setTimeout(() => res.writeHead(200).end(), 30))
    })
    await new Promise<void>((resolve) => slowHook!.listen(0, '127.0.0.1', resolve))
    const hookUrl = `http://127.0.0.1:${(slowHook.address() as AddressInfo).port}/hook`
    const configFile = writeConfig(dir, {
      node: { id: 'sigterm', dataDir: path.join(dir, 'data') },
      http: { listen: '127.0.0.1:0' },
      queue: { mode: 'durable', sync: 'batch' },
      workers: 1,
      pipelines: { all: { outputs: [{ http: { url: hookUrl } }, { file: { path: outFile } }] } },
    })
    let node = await NodeProcess.start(configFile, { label: 'sigterm#1' })
    watched.node = node
    let target: string | undefined = node.url
    const clients = startIngestClients({ clients: 8, target: () => target, maxBatch: 8, keepAlive })

    let atStop
    let exit
    try {
      // Steady ingest, with a backlog, so the stop meets requests in progress, busy
      // workers and acknowledged events not yet processed.
      atStop = await waitFor(
        async () => {
          const s = await node.stats()
          return clients.ledger.acked.size >= 1500 && s.queue.unprocessed >= 200 ? s : undefined
        },
        { timeoutMs: 45_000, intervalMs: 50, what: 'steady ingest with a backlog' },
      )
      exit = await node.kill('SIGTERM')
      // Clients keep posting into the void for a moment (refused connections), as they would.
      const refusedBefore = clients.ledger.statuses.get(0) ?? 0
      await waitFor(() => (clients.ledger.statuses.get(0) ?? 0) > refusedBefore, { what: 'a refused request after the stop' })
    } finally {
      await clients.stop()
    }
    expect(exit).toEqual({ code: 0, signal: null })
    expect(node.logs.some((l) => l.msg === 'The node stopped cleanly.')).toBe(true)
    // Only 202s, 503s while draining, or no answer once the socket is closed.
    expect([...clients.ledger.statuses.keys()].filter((s) => ![0, 202, 503].includes(s))).toEqual([])
    expect(clients.ledger.malformed).toEqual([])
    const afterStop = readOutput(outFile)
    const logTime = (msg: string) => Date.parse(node.logs.find((l) => l.msg === msg)?.time ?? '')
    const stopMs = logTime('The node stopped cleanly.') - logTime('A stop signal arrived.')

    // Whatever was not yet written out is still in the queue: a restart drains it.
    target = undefined
    node = await NodeProcess.start(configFile, { label: 'sigterm#2' })
    watched.node = node
    const recovered = await node.waitForLog((l) => l.msg === 'Queue recovery finished.')
    await node.waitDrained()
    const output = readOutput(outFile)
    const report = compareDelivery(clients.ledger, output)
    console.log(
      `${keepAlive ? 'keep-alive' : 'connection-per-request'}: stop took ${stopMs} ms; SIGTERM at acked ${clients.ledger.acked.size} with the queue at ${JSON.stringify(atStop!.queue)}: ` +
        `output had ${afterStop.records.length} lines after the stop; restart recovered ${JSON.stringify({ requeued: recovered.requeued, unprocessed: recovered.unprocessed })}; ` +
        `lost ${report.lost.length}, duplicates ${report.duplicates}, phantoms ${report.phantoms.length}, unknown ${clients.ledger.unknown.size}; ` +
        `answers ${JSON.stringify(Object.fromEntries(clients.ledger.statuses))}`,
    )
    expect(afterStop.tornTail).toBe(false)
    expect(afterStop.tornLines).toEqual([])
    if (!keepAlive) {
      // Nothing holds the HTTP server open, so the stop is quick and the backlog it met
      // is still queued at the restart: the "still in the queue" half is exercised.
      // (With keep-alive clients the stop currently takes http's 10 s force-close and
      // the workers drain the backlog meanwhile; either way nothing may be lost.)
      expect(recovered.unprocessed).toBeGreaterThan(0)
    }
    expect(report.lost.slice(0, 20)).toEqual([])
    expect(report.phantoms.slice(0, 20)).toEqual([])
    // A clean stop leaves nothing half done: each worker acked what it wrote out or let
    // go of it, so the restart writes nothing out twice.
    expect(report.duplicates).toBe(0)
    expect(await node.kill('SIGTERM')).toEqual({ code: 0, signal: null })
  })
})

describe('a stop while the node starts', () => {
  // A SIGTERM right after /healthz turned green (a container's health check, `docker
  // stop`) reaches a node still recovering its queue and joining its mesh.
  it('waits for the start to settle, then stops cleanly: both resolve and the port is closed', async () => {
    const dir = makeTempDir('binge-stop-while-starting-')
    const config = parseConfig(
      [
        `node: { id: s, dataDir: ${JSON.stringify(path.join(dir, 'data'))} }`,
        "http: { listen: '127.0.0.1:0' }",
        'mesh: { listen: /ip4/127.0.0.1/tcp/0 }',
        `pipelines: { p: { outputs: [ { file: { path: ${JSON.stringify(path.join(dir, 'out.jsonl'))} } } ] } }`,
      ].join('\n'),
      path.join(dir, 'binge.yaml'),
    )
    const node = new BingeNode(config, { log: silentLogger, processMetrics: false })
    const started = node.start()
    const stopped = node.stop()
    const address = await started
    await stopped
    expect(node.phase()).toBe('stopped')
    await expect(fetch(`http://127.0.0.1:${address.port}/healthz`)).rejects.toThrow()
  })
})

describe('a stop while an output hangs', () => {
  // An HTTP output whose POST never answers, with a long timeout: the stop gives the
  // worker its grace (10 s), then the output closes and aborts the POST, instead of
  // holding the node for the timeout. The event was not delivered, so it stays queued.
  it('SIGTERM ends after the workers grace, not the POST timeout; the event is still queued', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('binge-stop-hung-output-')
    const hook = await startWebhook({ held: true })
    const configFile = writeConfig(dir, {
      node: { id: 'hung', dataDir: path.join(dir, 'data') },
      http: { listen: '127.0.0.1:0' },
      queue: { mode: 'durable', sync: 'batch' },
      workers: 1,
      pipelines: { p: { outputs: [{ http: { url: hook.url, timeout: '10m' } }] } },
    })
    let node = await NodeProcess.start(configFile, { label: 'hung#1' })
    watched.node = node
    const posted = await fetch(`${node.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ order: 1 }),
    })
    expect(posted.status).toBe(202)
    await waitFor(async () => (await node.stats()).queue.inflight === 1, { what: 'the POST to the held webhook' })
    const signalled = Date.now()
    expect(await node.kill('SIGTERM', 60_000)).toEqual({ code: 0, signal: null })
    const stopMs = Date.now() - signalled
    console.log(`a stop with a hung output took ${stopMs} ms`)
    expect(stopMs).toBeLessThan(45_000)
    expect(node.logs.some((l) => l.msg === 'The node stopped cleanly.')).toBe(true)

    hook.release()
    node = await NodeProcess.start(configFile, { label: 'hung#2' })
    watched.node = node
    await waitFor(() => hook.received() >= 1, { what: 'the event delivered after the restart' })
    await node.waitDrained()
    expect(await node.kill('SIGTERM')).toEqual({ code: 0, signal: null })
  })
})
