// The ingest benchmark (issue: "Benchmark"): in one run, so the ratios compare figures
// taken on the same noisy machine minutes apart, it measures
//   - durable ingest (sync batch) of 1 KB single-event POSTs against a bare Node no-op
//     server in the same process, 50 connections: the ratio, p99 and the server's CPU
//     per request (aim: >= 0.45, <= 15 ms), and
//     Redis with an fsync-always AOF taking the same payload as LPUSH (aim: >= 0.45);
//   - sync always / none and memory mode, for context;
//   - POSTs of 100 events against a raw LevelDB loop of sync batches of 100 puts of the
//     same events in this process (aim: >= 80%);
//   - recovery of a 100k x 1 KB backlog (aim: < 2 s), end-to-end processed events/s
//     with and without steps, and the idle RSS of `binge start`.
//   - the CPU per request of the same two servers at a fixed rate (an open loop, by
//     thread), which the machine's noise moves far less than a saturated rate;
// It prints labelled lines, then one JSON line with every figure. Env: BENCH_SECONDS
// (per load run, default 10), BENCH_WARMUP (2), BENCH_CONNECTIONS (50), BENCH_RATE
// (requests/s of the fixed-rate runs, default 8000; 0: none), BENCH_RATE_PAIRS (3),
// BENCH_BATCH (events per POST and per raw LevelDB batch of the batch and end-to-end
// runs, default 100), BENCH_E2E_EVENTS (50000), BENCH_BACKLOG (100000), BENCH_ONLY
// (comma list of http,modes,batch,recovery,e2e,rss). Data lives in a temp dir removed at the end.
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { writeBatch } from '../src/queue/durable/write-batch.js'
import { uuidv7 } from '../src/ids.js'
import { readNodeBody } from '../src/http/body.js'
import { DurableQueue } from '../src/queue/index.js'
import type { EventRecord } from '../src/queue/types.js'
import type { BingeNode } from '../src/node.js'
import { measureRedisAnchor } from './redis-anchor.js'
import {
  Cleanup,
  envInt,
  envSeconds,
  eventOfSize,
  fmt,
  line,
  load,
  makeTempRoot,
  nodeConfigText,
  sleep,
  startNode,
  type ThreadsCpu,
  threadCpuMs,
  threadUsPer,
  waitUntil,
  type LoadResult,
} from './support.js'

const SECONDS = envSeconds('BENCH_SECONDS', 10)
const SHORT_SECONDS = Math.max(3, SECONDS / 2)
const WARMUP = envSeconds('BENCH_WARMUP', 2)
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 50)
const E2E_EVENTS = envInt('BENCH_E2E_EVENTS', 50_000)
const BACKLOG = envInt('BENCH_BACKLOG', 100_000)
const RATE = envInt('BENCH_RATE', 8000, 0)
const RATE_PAIRS = envInt('BENCH_RATE_PAIRS', 3)
const BATCH = envInt('BENCH_BATCH', 100)
const EVENT_BYTES = 1024
const ONLY = new Set((process.env.BENCH_ONLY ?? 'http,modes,batch,recovery,e2e,rss').split(',').map((s) => s.trim()))

const AIM = { ratio: 0.45, p99Ms: 15, batchShare: 0.8, recoveryMs: 2000 }

const event = eventOfSize(EVENT_BYTES)
const singleBody = JSON.stringify(event)
const batchBody = JSON.stringify(Array.from({ length: BATCH }, () => event))

const summary: Record<string, unknown> = {
  node: process.version,
  cpus: cpus().length,
  seconds: SECONDS,
  connections: CONNECTIONS,
  eventBytes: Buffer.byteLength(singleBody),
}

/**
 * The no-op: a bare Node HTTP server in this process (the issue's yardstick) that reads
 * the body the way POST /events does (readNodeBody) and answers 202 with a short JSON,
 * so only parsing, queueing and the node's own work differ.
 */
async function startNoop(cleanup: Cleanup): Promise<string> {
  const server = createServer((req, res) => {
    readNodeBody(req, req.headers['content-length'], 4 * 2 ** 20).then(
      (body) => {
        // Decoded as the node's parser decodes it, so the yardstick's work is what it was.
        body.toString('utf8')
        res.writeHead(202, { 'content-type': 'application/json', 'content-length': 11 })
        res.end('{"ok":true}')
      },
      () => res.writeHead(400).end(),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.add('stop the no-op server', () => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/noop`
}

/**
 * CPU time (ms) of this process's threads that serve HTTP and the queue: the main thread
 * and libuv's pool (LevelDB's reads, writes and syncs), not autocannon's worker thread.
 */
function serverCpuMs(): number {
  const { main, pool } = threadCpuMs(process.pid)
  return main + pool
}

/** A load run with the server's CPU per answered request. */
async function loadWithCpu(cleanup: Cleanup, options: Parameters<typeof load>[1]): Promise<LoadResult & { cpuUsPerReq: number }> {
  const before = serverCpuMs()
  const r = await load(cleanup, options)
  return { ...r, cpuUsPerReq: ((serverCpuMs() - before) * 1000) / Math.max(1, r.ok) }
}

function describe(r: LoadResult, perRequest = 1): string {
  const bad = r.non2xx + r.errors > 0 ? `  (non-2xx ${r.non2xx}, errors ${r.errors}: ${JSON.stringify(r.statusCodes)})` : ''
  const unit = perRequest === 1 ? 'req/s' : `req/s = ${fmt.int(r.okPerSecond * perRequest)} events/s`
  return `${fmt.int(r.okPerSecond)} ${unit}  p50 ${fmt.ms(r.p50)}  p99 ${fmt.ms(r.p99)}  max ${fmt.ms(r.max)}${bad}`
}

function figures(r: LoadResult, perRequest = 1) {
  return {
    reqPerSec: Math.round(r.okPerSecond),
    eventsPerSec: Math.round(r.okPerSecond * perRequest),
    p50: r.p50,
    p99: r.p99,
    max: r.max,
    non2xx: r.non2xx,
    errors: r.errors,
  }
}

/** The durable queue's write counters (undefined in memory mode). */
function queueWrites(node: BingeNode) {
  return node.queue instanceof DurableQueue ? node.queue.stats() : undefined
}

async function waitDrained(node: BingeNode, timeoutMs = 600_000): Promise<number> {
  const started = performance.now()
  await waitUntil(
    'the queue to drain',
    () => {
      const q = node.stats().queue
      return q.unprocessed === 0 && q.inflight === 0
    },
    timeoutMs,
    100,
  )
  return performance.now() - started
}

async function measureHttp(cleanup: Cleanup, root: string): Promise<number | undefined> {
  process.stdout.write(`\n== durable ingest vs no-op route, 1 KB single-event POSTs, ${CONNECTIONS} connections, ${SECONDS} s runs\n`)
  const { node, url, stop } = await startNode(cleanup, {
    id: 'bench-batch',
    dataDir: join(root, 'http'),
    queue: { sync: 'batch' },
  })
  const noop = { url: await startNoop(cleanup), connections: CONNECTIONS, body: singleBody }
  const events = { url: `${url}/events`, connections: CONNECTIONS, body: singleBody }

  await load(cleanup, { ...noop, seconds: WARMUP })
  const noop1 = await loadWithCpu(cleanup, { ...noop, seconds: SECONDS })
  line('bare Node no-op (before)', describe(noop1))

  await load(cleanup, { ...events, seconds: WARMUP })
  await waitDrained(node)
  if (RATE > 0) await measureAtRate(cleanup, noop, events)
  const before = node.stats()
  const writesBefore = queueWrites(node)
  const ingest = await loadWithCpu(cleanup, { ...events, seconds: SECONDS })
  const after = node.stats()
  const writesAfter = queueWrites(node)
  const backlog = after.queue.unprocessed + after.queue.inflight
  const drainedDuring = after.counters.received - before.counters.received - backlog
  const drainMs = await waitDrained(node)
  line('durable ingest sync=batch POST /events', describe(ingest))

  const noop2 = await loadWithCpu(cleanup, { ...noop, seconds: SECONDS })
  line('bare Node no-op (after)', describe(noop2))
  await stop()

  const noopRate = (noop1.okPerSecond + noop2.okPerSecond) / 2
  const ratio = ingest.okPerSecond / noopRate
  const band = [ingest.okPerSecond / noop1.okPerSecond, ingest.okPerSecond / noop2.okPerSecond]
  const syncs = writesAfter && writesBefore ? writesAfter.syncWrites - writesBefore.syncWrites : undefined
  const accepted = after.counters.received - before.counters.received
  if (syncs !== undefined) {
    line(
      '  group commit',
      `${fmt.int(syncs / ingest.seconds)} fsync'd batches/s, ${(accepted / Math.max(1, syncs)).toFixed(1)} events per fsync`,
    )
  }
  line(
    '  workers drained meanwhile (no pipelines)',
    `${fmt.int(drainedDuring / ingest.seconds)} events/s; backlog ${fmt.int(backlog)} drained in ${fmt.ms(drainMs)} after the run`,
  )
  // A closed loop: each connection waits for its answer, so mean latency = connections / rate.
  line(
    '  closed-loop mean latency (conns / rate)',
    `ingest ${fmt.ms((CONNECTIONS / ingest.okPerSecond) * 1000)}, noop ${fmt.ms((CONNECTIONS / noopRate) * 1000)}`,
  )
  line(
    '  ratio ingest / noop (mean of both)',
    `${fmt.ratio(ratio)} (vs before ${fmt.ratio(band[0]!)}, vs after ${fmt.ratio(band[1]!)})   aim >= ${AIM.ratio}: ${ratio >= AIM.ratio ? 'MET' : 'MISSED'}`,
  )
  const noopCpu = (noop1.cpuUsPerReq + noop2.cpuUsPerReq) / 2
  line(
    '  server CPU per request (main + libuv pool)',
    `ingest ${ingest.cpuUsPerReq.toFixed(0)} us, no-op ${noopCpu.toFixed(0)} us: ${(ingest.cpuUsPerReq / noopCpu).toFixed(1)}x`,
  )
  line(
    '  ingest p99',
    `${fmt.ms(ingest.p99)} (noop p99 ${fmt.ms(noop1.p99)} / ${fmt.ms(noop2.p99)})   aim <= ${AIM.p99Ms} ms: ${ingest.p99 <= AIM.p99Ms ? 'MET' : 'MISSED'}`,
  )
  const redis = await measureRedisAnchor(cleanup, root, {
    clients: CONNECTIONS,
    bytes: EVENT_BYTES,
    seconds: SECONDS,
    expectedRate: noopRate,
  })
  if (redis) {
    const redisRatio = ingest.okPerSecond / redis.opsPerSec
    line(
      'redis appendfsync=always LPUSH (anchor)',
      `${fmt.int(redis.opsPerSec)} ops/s  p50 ${fmt.ms(redis.p50Ms ?? Number.NaN)}  p99 ${fmt.ms(redis.p99Ms ?? Number.NaN)}`,
    )
    line('  ratio ingest / redis', `${fmt.ratio(redisRatio)}   aim >= 0.45: ${redisRatio >= 0.45 ? 'MET' : 'MISSED'}`)
    summary.redis = { ...redis, ratio: Number(redisRatio.toFixed(3)) }
  } else {
    line('redis appendfsync=always LPUSH (anchor)', 'skipped: redis-server is not installed (Debian package redis-server)')
  }
  summary.http = {
    noopBefore: figures(noop1),
    noopAfter: figures(noop2),
    ingest: figures(ingest),
    ratio: Number(ratio.toFixed(3)),
    cpuUsPerRequest: { ingest: Math.round(ingest.cpuUsPerReq), noop: Math.round(noopCpu) },
    ratioVsBefore: Number(band[0]!.toFixed(3)),
    ratioVsAfter: Number(band[1]!.toFixed(3)),
    ratioMet: ratio >= AIM.ratio,
    p99Met: ingest.p99 <= AIM.p99Ms,
    fsyncsPerSec: syncs === undefined ? undefined : Math.round(syncs / ingest.seconds),
    eventsPerFsync: syncs === undefined ? undefined : Number((accepted / Math.max(1, syncs)).toFixed(1)),
    drainedDuringPerSec: Math.round(drainedDuring / ingest.seconds),
    drainAfterMs: Math.round(drainMs),
  }
  return noopRate
}

/** µs per request on the main thread, libuv's pool and V8's helper threads. */
type ThreadUs = Omit<ThreadsCpu, 'other'>

/** µs per request by thread (autocannon's worker aside) over one run at RATE requests/s. */
async function cpuAtRate(cleanup: Cleanup, target: Parameters<typeof load>[1]): Promise<ThreadUs> {
  const before = threadCpuMs(process.pid)
  const r = await load(cleanup, { ...target, rate: RATE, seconds: SHORT_SECONDS })
  const { main, pool, v8 } = threadUsPer(before, threadCpuMs(process.pid), Math.max(1, r.ok))
  const tenth = (us: number) => Number(us.toFixed(1))
  return { main: tenth(main), pool: tenth(pool), v8: tenth(v8) }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!

/**
 * The no-op and durable ingest at a fixed RATE, in alternating pairs: the CPU each
 * request costs by thread. At a saturated rate the two servers share the cores with
 * the load generator, and the figure moves by a fifth between runs; here it moves less.
 */
async function measureAtRate(cleanup: Cleanup, noop: Parameters<typeof load>[1], events: Parameters<typeof load>[1]): Promise<void> {
  const runs: { noop: ThreadUs[]; ingest: ThreadUs[] } = { noop: [], ingest: [] }
  for (let i = 0; i < RATE_PAIRS; i++) {
    runs.noop.push(await cpuAtRate(cleanup, noop))
    runs.ingest.push(await cpuAtRate(cleanup, events))
  }
  const show = (rs: ThreadUs[]) =>
    `main ${rs.map((r) => r.main).join(' / ')} us, all three ${rs.map((r) => (r.main + r.pool + r.v8).toFixed(1)).join(' / ')} us`
  const noopMain = median(runs.noop.map((r) => r.main))
  const ingestMain = median(runs.ingest.map((r) => r.main))
  const ingestAll = median(runs.ingest.map((r) => r.main + r.pool + r.v8))
  line(`CPU per request at ${fmt.int(RATE)} req/s, no-op`, show(runs.noop))
  line(
    `CPU per request at ${fmt.int(RATE)} req/s, ingest`,
    `${show(runs.ingest)} (pool ${runs.ingest.map((r) => r.pool).join(' / ')}, V8 helpers ${runs.ingest.map((r) => r.v8).join(' / ')})`,
  )
  line(
    '  medians: ingest main, ingest all, no-op main',
    `${ingestMain} / ${ingestAll.toFixed(1)} / ${noopMain} us: main ${(ingestMain / noopMain).toFixed(1)}x the no-op`,
  )
  summary.httpAtRate = { rate: RATE, ...runs, medians: { ingestMain, ingestAll: Number(ingestAll.toFixed(1)), noopMain } }
}

async function measureModes(cleanup: Cleanup, root: string, noopRate: number | undefined): Promise<void> {
  process.stdout.write(`\n== other queue modes, same POSTs, ${SHORT_SECONDS} s runs\n`)
  const modes = [
    { name: 'durable ingest sync=always', queue: { sync: 'always' } },
    { name: 'durable ingest sync=none', queue: { sync: 'none' } },
    { name: 'memory ingest', queue: { mode: 'memory' } },
  ]
  const out: Record<string, unknown> = {}
  for (const [i, m] of modes.entries()) {
    const { node, url, stop } = await startNode(cleanup, { id: `bench-mode-${i}`, dataDir: join(root, `mode-${i}`), queue: m.queue })
    const target = { url: `${url}/events`, connections: CONNECTIONS, body: singleBody }
    await load(cleanup, { ...target, seconds: WARMUP })
    await waitDrained(node)
    const before = node.stats()
    const r = await load(cleanup, { ...target, seconds: SHORT_SECONDS })
    const after = node.stats()
    await stop()
    const drained = (after.counters.received - before.counters.received - after.queue.unprocessed - after.queue.inflight) / r.seconds
    const ratio = noopRate === undefined ? undefined : r.okPerSecond / noopRate
    line(m.name, `${describe(r)}${ratio === undefined ? '' : `  ratio to noop ${fmt.ratio(ratio)}`}`)
    line('  workers drained meanwhile', `${fmt.int(drained)} events/s`)
    out[m.name] = {
      ...figures(r),
      ratio: ratio === undefined ? undefined : Number(ratio.toFixed(3)),
      drainedDuringPerSec: Math.round(drained),
    }
  }
  summary.modes = out
}

/** Sync batches of `BATCH` puts of the event, from `writers` concurrent loops, for `seconds`. */
async function rawLevel(cleanup: Cleanup, dir: string, writers: number, seconds: number): Promise<number> {
  const db = new Level<string, string>(dir, { valueEncoding: 'utf8' })
  await db.open()
  const close = cleanup.add(`close ${dir}`, () => db.close()).now
  let seq = 0
  let batches = 0
  const writeFor = async (ms: number) => {
    const deadline = performance.now() + ms
    const loop = async () => {
      while (performance.now() < deadline) {
        const ops = Array.from({ length: BATCH }, () => ({
          type: 'put' as const,
          key: `q!${String(seq++).padStart(16, '0')}`,
          value: singleBody,
        }))
        // Chained, as the queue writes (write-batch.ts): the fastest way LevelDB takes a batch.
        await writeBatch(db, ops, true)
        batches++
      }
    }
    await Promise.all(Array.from({ length: writers }, loop))
  }
  await writeFor(WARMUP * 1000)
  batches = 0
  const started = performance.now()
  await writeFor(seconds * 1000)
  const elapsed = (performance.now() - started) / 1000
  await close()
  return (batches * BATCH) / elapsed
}

async function measureBatch(cleanup: Cleanup, root: string): Promise<void> {
  process.stdout.write(
    `\n== POSTs of ${BATCH} x 1 KB events (sync=batch, ${CONNECTIONS} connections) vs raw LevelDB sync batches of ${BATCH} puts, ${SECONDS} s runs\n`,
  )
  // The raw loop runs before and after the node, and the two are averaged: the machine drifts.
  const seqBefore = await rawLevel(cleanup, join(root, 'raw-1a'), 1, SECONDS)
  line(
    `raw LevelDB batch(${BATCH} puts, sync), 1 loop`,
    `${fmt.int(seqBefore)} events/s = ${fmt.int(seqBefore / BATCH)} batches/s (before)`,
  )

  const { node, url, stop } = await startNode(cleanup, { id: 'bench-batch100', dataDir: join(root, 'batch100'), queue: { sync: 'batch' } })
  const target = { url: `${url}/events`, connections: CONNECTIONS, body: batchBody }
  await load(cleanup, { ...target, seconds: WARMUP })
  await waitDrained(node)
  const before = node.stats()
  const writesBefore = queueWrites(node)
  const r = await load(cleanup, { ...target, seconds: SECONDS })
  const after = node.stats()
  const writesAfter = queueWrites(node)
  await stop()
  line(`batch POST /events (${BATCH} events)`, describe(r, BATCH))
  const nodeRate = r.okPerSecond * BATCH
  if (writesBefore && writesAfter) {
    const syncs = writesAfter.syncWrites - writesBefore.syncWrites
    const drained = after.counters.received - before.counters.received - after.queue.unprocessed - after.queue.inflight
    line(
      '  group commit',
      `${fmt.int(syncs / r.seconds)} fsync'd batches/s, ${((after.counters.received - before.counters.received) / Math.max(1, syncs)).toFixed(0)} events per fsync; workers drained ${fmt.int(drained / r.seconds)} events/s meanwhile`,
    )
  }

  const seqAfter = await rawLevel(cleanup, join(root, 'raw-1b'), 1, SECONDS)
  line(`raw LevelDB batch(${BATCH} puts, sync), 1 loop`, `${fmt.int(seqAfter)} events/s = ${fmt.int(seqAfter / BATCH)} batches/s (after)`)
  const seqRate = (seqBefore + seqAfter) / 2
  const concRate = await rawLevel(cleanup, join(root, `raw-${CONNECTIONS}`), CONNECTIONS, SECONDS)
  line(
    `raw LevelDB batch(${BATCH} puts, sync), ${CONNECTIONS} loops`,
    `${fmt.int(concRate)} events/s = ${fmt.int(concRate / BATCH)} batches/s`,
  )
  const share = nodeRate / seqRate
  line(
    '  node / raw (1 loop, mean of both)',
    `${fmt.ratio(share)} (vs before ${fmt.ratio(nodeRate / seqBefore)}, vs after ${fmt.ratio(nodeRate / seqAfter)})   aim >= ${AIM.batchShare}: ${share >= AIM.batchShare ? 'MET' : 'MISSED'}`,
  )
  line(`  node / raw (${CONNECTIONS} loops)`, fmt.ratio(nodeRate / concRate))
  summary.batch = {
    node: figures(r, BATCH),
    rawOneLoopEventsPerSec: Math.round(seqRate),
    rawOneLoopBefore: Math.round(seqBefore),
    rawOneLoopAfter: Math.round(seqAfter),
    rawConcurrentEventsPerSec: Math.round(concRate),
    share: Number(share.toFixed(3)),
    shareConcurrent: Number((nodeRate / concRate).toFixed(3)),
    shareMet: share >= AIM.batchShare,
  }
}

async function measureRecovery(cleanup: Cleanup, root: string): Promise<void> {
  process.stdout.write(`\n== recovery of a ${fmt.int(BACKLOG)} x 1 KB backlog\n`)
  const dataDir = join(root, 'recovery')
  const options = { dir: join(dataDir, 'queue'), sync: 'none' as const, maxEvents: 50_000_000, maxBytes: 2 ** 40, dedupeWindowMs: 600_000 }
  const writer = new DurableQueue(options)
  await writer.open()
  const closeWriter = cleanup.add('close the backlog writer', () => writer.close()).now
  const started = performance.now()
  for (let i = 0; i < BACKLOG; i += 1000) {
    const records: EventRecord[] = Array.from({ length: Math.min(1000, BACKLOG - i) }, () => ({
      id: uuidv7(),
      origin: 'bench',
      receivedAt: Date.now(),
      hops: 0,
      data: event,
    }))
    await writer.enqueue(records)
  }
  const writeMs = performance.now() - started
  // A crash with the workers busy: their events are in flight when the store closes.
  const inflight = await writer.dequeue(4)
  await closeWriter()
  line('backlog written (enqueue x1000, sync=none)', `${fmt.int(BACKLOG / (writeMs / 1000))} events/s; ${inflight.length} left in flight`)

  const reader = new DurableQueue(options)
  const openStarted = performance.now()
  const report = await reader.open()
  const openMs = performance.now() - openStarted
  await reader.close()
  line(
    'DurableQueue.open() on the backlog',
    `${fmt.ms(openMs)} (recovery report ${fmt.ms(report.durationMs)}: ${fmt.int(report.unprocessed)} unprocessed, ${report.requeued} requeued)   aim < ${AIM.recoveryMs} ms: ${openMs < AIM.recoveryMs ? 'MET' : 'MISSED'}`,
  )

  const nodeStarted = performance.now()
  const { url, stop } = await startNode(cleanup, { id: 'bench-recovery', dataDir, queue: { sync: 'batch' } })
  const startMs = performance.now() - nodeStarted
  const ready = (await fetch(`${url}/readyz`)).status
  await stop()
  line(
    'node start() until ready on the backlog',
    `${fmt.ms(startMs)} (/readyz ${ready})   aim < ${AIM.recoveryMs} ms: ${startMs < AIM.recoveryMs ? 'MET' : 'MISSED'}`,
  )
  summary.recovery = {
    backlog: BACKLOG,
    openMs: Math.round(openMs),
    reportMs: Math.round(report.durationMs),
    nodeStartMs: Math.round(startMs),
    unprocessed: report.unprocessed,
    requeued: report.requeued,
    met: openMs < AIM.recoveryMs && startMs < AIM.recoveryMs,
  }
}

async function measureE2e(cleanup: Cleanup, root: string): Promise<void> {
  process.stdout.write(
    `\n== end to end: ${fmt.int(E2E_EVENTS)} events POSTed in batches of ${BATCH} (10 connections), 4 workers, file output\n`,
  )
  const out: Record<string, unknown> = {}
  const cases = [
    { name: 'filter + map + file', steps: [{ filter: 'celsius > 30' }, { map: '$merge([$, {"fahrenheit": celsius * 9 / 5 + 32}])' }] },
    { name: 'no steps + file', steps: [] },
    // Queue and workers alone: what is left when the output's fsync is out of the way.
    { name: 'no steps, no outputs', steps: [], outputs: false },
  ]
  const requests = Math.ceil(E2E_EVENTS / BATCH)
  const total = requests * BATCH
  for (const [i, c] of cases.entries()) {
    const dataDir = join(root, `e2e-${i}`)
    const outFile = join(dataDir, 'out', 'bench.jsonl')
    const { url, stop } = await startNode(cleanup, {
      id: `bench-e2e-${i}`,
      dataDir,
      queue: { sync: 'batch' },
      workers: 4,
      pipelines: { bench: { steps: c.steps, outputs: c.outputs === false ? [] : [{ file: { path: outFile } }] } },
    })
    const started = performance.now()
    const r = await load(cleanup, { url: `${url}/events`, connections: 10, amount: requests, body: batchBody })
    const ingestedMs = performance.now() - started
    const finished = async () => {
      const s = (await (await fetch(`${url}/stats`)).json()) as { counters: { processed: number; filtered: number; failed: number } }
      return s.counters.processed + s.counters.filtered + s.counters.failed
    }
    const doneAtIngest = await finished()
    let done = 0
    await waitUntil('every event to be processed', async () => (done = await finished()) >= r.ok * BATCH, 600_000, 50)
    const doneMs = performance.now() - started
    const tailRate = done > doneAtIngest ? (done - doneAtIngest) / ((doneMs - ingestedMs) / 1000) : 0
    await stop()
    const lines = c.outputs === false ? 0 : (await readFile(outFile, 'utf8')).split('\n').length - 1
    const rate = done / (doneMs / 1000)
    line(
      `e2e ${c.name}`,
      `${fmt.int(rate)} processed events/s (${fmt.int(done)} in ${fmt.ms(doneMs)}; ${fmt.int(lines)} output lines${r.ok === requests ? '' : `; only ${r.ok}/${requests} POSTs 2xx`})`,
    )
    line(
      '  ingest / processing after it',
      `ingest done at ${fmt.ms(ingestedMs)} with ${fmt.int(doneAtIngest)} processed (${fmt.int(doneAtIngest / (ingestedMs / 1000))}/s meanwhile); ${done > doneAtIngest ? `then ${fmt.int(tailRate)} events/s` : 'nothing left after it'}`,
    )
    out[c.name] = {
      eventsPerSec: Math.round(rate),
      events: done,
      expected: total,
      ms: Math.round(doneMs),
      ingestMs: Math.round(ingestedMs),
      processedDuringIngest: doneAtIngest,
      tailEventsPerSec: Math.round(tailRate),
      outputLines: lines,
    }
  }
  summary.e2e = out
}

async function measureRss(cleanup: Cleanup, root: string): Promise<void> {
  process.stdout.write('\n== idle RSS of `binge start` (durable queue, no pipelines)\n')
  const dataDir = join(root, 'rss')
  await mkdir(dataDir, { recursive: true })
  const configFile = join(dataDir, 'binge.yaml')
  await writeFile(configFile, nodeConfigText({ id: 'bench-rss', dataDir }, 'info'))
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))
  const child = spawn(process.execPath, [cli, 'start', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] })
  const pid = child.pid
  if (pid === undefined) throw new Error('could not spawn binge start')
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const stopChild = cleanup.add(`stop binge start (pid ${pid})`, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(pid, 'SIGTERM')
    const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(pid, 'SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }).now

  let stderr = ''
  const listening = new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk
      const m = /"http":"([^"]+)"/.exec(stderr)
      if (m) resolve(m[1]!)
    })
    void exited.then((code) => reject(new Error(`binge start exited with ${code} before listening: ${stderr.slice(0, 2000)}`)))
  })
  const address = await listening
  await waitUntil('/readyz 200', async () => (await fetch(`http://${address}/readyz`).catch(() => undefined))?.status === 200, 30_000, 50)
  await sleep(2000)
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  const rss = kib('VmRSS') * 1024
  const hwm = kib('VmHWM') * 1024
  await stopChild()
  const code = await exited
  line('idle RSS after /readyz + 2 s', `${fmt.mib(rss)} (peak ${fmt.mib(hwm)}); SIGTERM exit code ${code}`)
  summary.idleRss = { bytes: rss, peakBytes: hwm, exitCode: code }
}

async function main(): Promise<void> {
  const cleanup = new Cleanup()
  let interrupted = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130)
    interrupted = true
    process.stderr.write(`${signal}: stopping everything the benchmark started\n`)
    void cleanup.runAll().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const root = await makeTempRoot(cleanup)
    process.stdout.write(
      `binge ingest benchmark: node ${process.version}, ${cpus().length} cpus, ${SECONDS} s runs (warm-up ${WARMUP} s), ${CONNECTIONS} connections, ${summary.eventBytes} B events, data in ${root}\n`,
    )
    let noopRate: number | undefined
    if (ONLY.has('http')) noopRate = await measureHttp(cleanup, root)
    if (ONLY.has('modes')) await measureModes(cleanup, root, noopRate)
    if (ONLY.has('batch')) await measureBatch(cleanup, root)
    if (ONLY.has('recovery')) await measureRecovery(cleanup, root)
    if (ONLY.has('e2e')) await measureE2e(cleanup, root)
    if (ONLY.has('rss')) await measureRss(cleanup, root)
    process.stdout.write(`\n${JSON.stringify(summary)}\n`)
  } catch (err) {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  } finally {
    await cleanup.runAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

await main()
