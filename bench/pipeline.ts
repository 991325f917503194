// The pipeline benchmark (issue: "Performance"): events/s through a pipeline of
// filter + map + file output at 4 workers, against the same node with an empty
// pipeline (no steps, no outputs), in one run so both figures come from the same
// machine at the same time. Each round writes a backlog of BENCH_EVENTS events into the
// node's durable queue first, then starts the node (4 workers, sync batch) and times
// it draining the backlog: queue, workers and acks are common to both, so what differs
// is what the pipeline costs. Rounds alternate the two nodes; the median counts.
// Aim: the pipeline costs under 30% of the throughput (ratio >= 0.70).
// Prints labelled lines, then one JSON line with every figure. Env: BENCH_EVENTS
// (default 50000), BENCH_ROUNDS (5), BENCH_WORKERS (4), BENCH_DETAIL=1 (also the steps
// alone and the file output alone). Data lives in a temp dir removed at the end.
import { readFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { DurableQueue } from '../src/queue/index.js'
import type { EventRecord } from '../src/queue/types.js'
import { Cleanup, envInt, eventOfSize, fmt, line, makeTempRoot, startNode, waitUntil } from './support.js'

const EVENTS = envInt('BENCH_EVENTS', 50_000)
const ROUNDS = envInt('BENCH_ROUNDS', 5)
const WORKERS = envInt('BENCH_WORKERS', 4)
const AIM_COST = 0.3

interface Variant {
  name: string
  pipeline: (outFile: string) => Record<string, unknown>
}

const steps = [{ filter: 'celsius > 0' }, { map: '$merge([$, {"fahrenheit": celsius * 9 / 5 + 32}])' }]

const variants: Variant[] = [
  { name: 'empty pipeline', pipeline: () => ({}) },
  {
    name: 'filter + map + file',
    pipeline: (outFile) => ({
      // Every event passes the filter, so the map and the file see them all.
      steps,
      outputs: [{ file: { path: outFile } }],
    }),
  },
  // BENCH_DETAIL=1: the two halves apart, to see where the cost is.
  ...(process.env.BENCH_DETAIL === '1'
    ? [
        { name: 'filter + map, no output', pipeline: () => ({ steps }) },
        { name: 'file output, no steps', pipeline: (outFile: string) => ({ outputs: [{ file: { path: outFile } }] }) },
      ]
    : []),
]

async function writeBacklog(dir: string): Promise<void> {
  const queue = new DurableQueue({ dir, sync: 'none', maxEvents: 50_000_000, maxBytes: 2 ** 40, dedupeWindowMs: 600_000 })
  await queue.open()
  try {
    for (let i = 0; i < EVENTS; i += 1000) {
      const records: EventRecord[] = Array.from({ length: Math.min(1000, EVENTS - i) }, (_, k) => ({
        id: `bench-${i + k}`,
        origin: 'bench',
        receivedAt: Date.now(),
        hops: 0,
        data: eventOfSize(256, { room: `room-${(i + k) % 100}`, celsius: 20 + ((i + k) % 30) }),
      }))
      await queue.enqueue(records)
    }
  } finally {
    await queue.close()
  }
}

interface RoundResult {
  eventsPerSec: number
  ms: number
  outputLines: number
}

async function round(cleanup: Cleanup, root: string, variant: Variant, index: number): Promise<RoundResult> {
  const dataDir = join(root, `${index}-${variant.name.replace(/\W+/g, '-')}`)
  const outFile = join(dataDir, 'out', 'bench.jsonl')
  await writeBacklog(join(dataDir, 'queue'))
  const { node, stop } = await startNode(cleanup, {
    id: `bench-pipeline-${index}`,
    dataDir,
    queue: { sync: 'batch' },
    workers: WORKERS,
    pipelines: { bench: variant.pipeline(outFile) },
  })
  const finished = () => {
    const c = node.stats().counters
    return c.processed + c.filtered + c.failed
  }
  // The clock starts once the workers run; what they did before is left out of both sides.
  const started = performance.now()
  const before = finished()
  await waitUntil('the backlog to be processed', () => finished() >= EVENTS, 600_000, 5)
  const ms = performance.now() - started
  const failed = node.stats().counters.failed
  await stop()
  if (failed > 0) throw new Error(`${variant.name}: ${failed} events failed`)
  const outputLines = variant.name.includes('file') ? (await readFile(outFile, 'utf8')).split('\n').length - 1 : 0
  return { eventsPerSec: (EVENTS - before) / (ms / 1000), ms, outputLines }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  const cleanup = new Cleanup()
  process.once('SIGINT', () => void cleanup.runAll().then(() => process.exit(130)))
  try {
    const root = await makeTempRoot(cleanup)
    process.stdout.write(
      `== pipeline throughput: a backlog of ${fmt.int(EVENTS)} x 256 B events, ${WORKERS} workers, durable queue (sync batch), ${ROUNDS} rounds, ${cpus().length} CPUs\n`,
    )
    const results = new Map<string, RoundResult[]>(variants.map((v) => [v.name, []]))
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, v] of variants.entries()) {
        const result = await round(cleanup, root, v, r * variants.length + i)
        results.get(v.name)!.push(result)
        line(
          `round ${r + 1}: ${v.name}`,
          `${fmt.int(result.eventsPerSec)} events/s (${fmt.ms(result.ms)}${result.outputLines ? `; ${fmt.int(result.outputLines)} output lines` : ''})`,
        )
      }
    }
    const empty = median(results.get('empty pipeline')!.map((r) => r.eventsPerSec))
    const full = median(results.get('filter + map + file')!.map((r) => r.eventsPerSec))
    const ratio = full / empty
    const cost = 1 - ratio
    process.stdout.write('\n')
    line('empty pipeline (median)', `${fmt.int(empty)} events/s`)
    line('filter + map + file (median)', `${fmt.int(full)} events/s`)
    line(
      'ratio / cost of the pipeline',
      `${fmt.ratio(ratio)} / ${(cost * 100).toFixed(0)}%   aim: cost < ${AIM_COST * 100}%: ${cost < AIM_COST ? 'MET' : 'MISSED'}`,
    )
    const lines = results.get('filter + map + file')!.map((r) => r.outputLines)
    if (lines.some((n) => n !== EVENTS)) throw new Error(`expected ${EVENTS} output lines per round, got ${lines.join(', ')}`)
    process.stdout.write(
      `${JSON.stringify({
        bench: 'pipeline',
        events: EVENTS,
        workers: WORKERS,
        rounds: ROUNDS,
        cpus: cpus().length,
        emptyEventsPerSec: Math.round(empty),
        pipelineEventsPerSec: Math.round(full),
        ratio: Number(ratio.toFixed(3)),
        cost: Number(cost.toFixed(3)),
        met: cost < AIM_COST,
        runs: Object.fromEntries([...results].map(([k, v]) => [k, v.map((r) => Math.round(r.eventsPerSec))])),
      })}\n`,
    )
  } finally {
    await cleanup.runAll()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`)
  process.exit(1)
})
