// `binge run --config F [--pipeline P] [--dry-run] [FILE | -]`: one-shot, a config's
// unit test. Reads one JSON event (an object, or an array of them) or NDJSON lines,
// runs them through the pipelines in memory (no HTTP, no mesh, no queue on disk), and
// prints what each output received as JSON lines on stdout:
//   {"pipeline":"p","output":"file","index":0,"record":{...}}
// With --dry-run the outputs only print; without, they also deliver for real (the
// stdout output excepted: the printed line is its line). Logs go to stderr.
// Exit 0: every event processed or filtered; 1: a pipeline failed one; 2: bad input or
// config, and then nothing ran. Events go through in batches of 32, as one worker
// takes them (one write per output per batch), and stateful steps see the state
// committed by the batches before; at the end of the input they close everything they
// hold (a window emits its last results). The lines of a batch are printed once it is
// done, in a fixed order: by pipeline as in the config, then output, then event.
import { readFile } from 'node:fs/promises'
import { loadConfig, type Config } from '../config/index.js'
import { asError } from '../errors.js'
import { EventInputError } from '../events/check-event.js'
import { parseEvents } from '../events/parse-events.js'
import { createLogger } from '../log.js'
import { Metrics } from '../metrics.js'
import { Engine } from '../pipeline/engine.js'
import { OutputFailure } from '../pipeline/outputs/failure.js'
import { Pipeline, type PipelineDeps } from '../pipeline/pipeline.js'
import type { OutputWrapper } from '../pipeline/registry.js'
import { applyStateOps } from '../queue/state-ops.js'
import type { EventRecord, JsonObject } from '../queue/types.js'
import { TraceStore } from '../trace.js'
import { reportConfigError } from './validate.js'

export interface RunOptions {
  config: string
  /** Run only this pipeline (its `when` still applies). */
  pipeline?: string
  dryRun?: boolean
  /** A file of events; absent or `-`: stdin. */
  input?: string
}

export interface RunStreams {
  stdin: NodeJS.ReadableStream
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
}

const batchSize = 32

/**
 * Events in `text`: one JSON object, an array of them, or one object a line, through the
 * parser and checks every door uses (so `binge run` refuses what POST /events refuses),
 * worded for a file: `source:line: ...`.
 */
export function readEvents(text: string, source: string): { events: JsonObject[] } | { problem: string } {
  try {
    return { events: parseAnyFormat(text) }
  } catch (err) {
    if (!(err instanceof EventInputError)) throw err
    return { problem: describeProblem(err, source) }
  }
}

/** A whole JSON document if the text is one, else NDJSON (a syntax error there has its line). */
function parseAnyFormat(text: string): JsonObject[] {
  try {
    return parseEvents(text, 'json').events
  } catch (err) {
    if (err instanceof EventInputError && err.problem.kind === 'syntax') return parseEvents(text, 'ndjson').events
    throw err
  }
}

function describeProblem(err: EventInputError, source: string): string {
  const { kind, line, item, found } = err.problem
  const at = line === undefined ? `${source}:` : `${source}:${line}:`
  if (kind === 'empty') return `${source}: no event: ${found === 'an empty array' ? 'the array is empty' : 'the input is empty'}`
  if (kind === 'syntax') return `${at} bad JSON: ${err.message}`
  if (kind === 'not-object') return `${at}${item === undefined ? '' : ` item ${item}:`} expected a JSON object, got ${found}`
  return `${at} ${err.message}`
}

async function readInput(input: string | undefined, stdin: NodeJS.ReadableStream): Promise<string> {
  if (input !== undefined && input !== '-') return readFile(input, 'utf8')
  const chunks: Buffer[] = []
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
  return Buffer.concat(chunks).toString('utf8')
}

function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => stream.write(text, (err) => (err ? reject(err) : resolve())))
}

/** The pipelines to run: all, or the one named; in a dry run, failures only dead-letter (no webhook is called). */
function selectPipelines(config: Config, options: RunOptions): Array<[string, Config['pipelines'][string]]> {
  return Object.entries(config.pipelines)
    .filter(([name]) => options.pipeline === undefined || name === options.pipeline)
    .map(([name, p]) => [name, options.dryRun ? { ...p, onFail: { ...p.onFail, then: 'deadletter' as const } } : p])
}

export async function runOnce(options: RunOptions, io: RunStreams = process): Promise<number> {
  const fail = async (message: string) => {
    await write(io.stderr, `binge run: ${message}\n`)
    return 2
  }
  let config: Config
  try {
    config = loadConfig(options.config)
  } catch (err) {
    return reportConfigError(options.config, err)
  }
  if (options.pipeline !== undefined && !Object.hasOwn(config.pipelines, options.pipeline)) {
    const known = Object.keys(config.pipelines).join(', ') || 'none'
    return fail(`${options.config} has no pipeline "${options.pipeline}" (it has: ${known})`)
  }
  const source = options.input === undefined || options.input === '-' ? 'stdin' : options.input
  let text: string
  try {
    text = await readInput(options.input, io.stdin)
  } catch (err) {
    return fail(`cannot read ${source}: ${asError(err).message}`)
  }
  const input = readEvents(text, source)
  if ('problem' in input) return fail(`bad input, nothing ran:\n${input.problem}`)
  const objects = input.events

  const nodeId = config.node.id
  const log = createLogger(config.log.level, { node: nodeId, command: 'run' })
  const metrics = new Metrics(nodeId, () => ({ unprocessed: 0, inflight: 0, handingOff: 0, deadletter: 0, bytes: 0 }), {
    defaultMetrics: false,
  })
  const trace = new TraceStore(nodeId)
  /** Stateful steps' committed state, as the queue keeps it (src/queue/state-ops.ts). */
  const state = new Map<string, string>()
  const selected = selectPipelines(config, options)
  // Lines of the current batch by pipeline and output (pipelines run concurrently).
  const received = selected.map(([, p]) => p.outputs.map((): string[] => []))
  const order = new Map(selected.map(([name], i) => [name, i]))
  const tap: OutputWrapper = (output, place) => ({
    kind: output.kind,
    async write(records, opts) {
      if (!options.dryRun && place.name !== 'stdout') await output.write(records, opts)
      const lines = received[order.get(place.pipeline)!]![place.index]!
      for (const record of records)
        lines.push(`${JSON.stringify({ pipeline: place.pipeline, output: place.name, index: place.index, record })}\n`)
    },
    ...(options.dryRun ? {} : { start: output.start?.bind(output), stop: output.stop?.bind(output) }),
  })
  const deps: PipelineDeps = {
    nodeId,
    log,
    metrics,
    trace,
    wrapOutput: tap,
    forward: async (pipeline) => {
      throw new OutputFailure(`forward to pipeline "${pipeline}": binge run has no mesh (--dry-run shows what it would send)`, true)
    },
  }
  let engine: Engine
  try {
    engine = new Engine(
      selected.map(([name, p]) => new Pipeline({ name, ...p }, deps)),
      log,
      trace,
    )
  } catch (err) {
    return fail(`${options.config}: ${asError(err).message}`)
  }

  const receivedAt = Date.now()
  const events: EventRecord[] = objects.map((data, i) => ({ id: `run-${i + 1}`, origin: nodeId, receivedAt, hops: 0, data }))
  const signal = new AbortController().signal
  const print = async () => {
    const text = received.flatMap((outputs) => outputs.flatMap((lines) => lines.splice(0))).join('')
    if (text !== '') await write(io.stdout, text)
  }
  await engine.start()
  try {
    for (let i = 0; i < events.length; i += batchSize) {
      const acks = await engine.processBatch(events.slice(i, i + batchSize), signal)
      for (const ack of acks) applyStateOps(ack.state ?? [], state)
      await print()
    }
    // End of input: stateful steps close what they hold (a window emits its last results).
    applyStateOps(await engine.closeAll(signal), state)
    await print()
  } finally {
    await engine.stop()
  }
  const c = metrics.counters
  const outcome = {
    events: events.length,
    processed: c.processed,
    filtered: c.filtered,
    failed: c.failed,
    deadlettered: c.deadlettered,
    dropped: c.dropped,
  }
  if (c.failed > 0) log.warn(outcome, 'binge run finished: a pipeline failed an event.')
  else log.info(outcome, 'binge run finished.')
  return c.failed > 0 ? 1 : 0
}
