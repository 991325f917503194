// The engine runs each event through every pipeline it enters and turns the results
// into one ack: the event leaves the queue together with its dead letters and its
// stateful steps' state, in one batch, only after every pipeline has finished or
// handled its failure. Nothing here drops an event without a count and a log line.
import type { Logger } from 'pino'
import type { AckOptions, EventRecord } from '../queue/types.js'
import type { TraceStore } from '../trace.js'
import type { Pipeline } from './pipeline.js'

export class Engine {
  private readonly byName: Map<string, Pipeline>

  constructor(readonly pipelines: Pipeline[], private readonly log: Logger, private readonly trace: TraceStore) {
    this.byName = new Map(pipelines.map((p) => [p.name, p]))
  }

  has(name: string): boolean {
    return this.byName.has(name)
  }

  async start(): Promise<void> {
    for (const p of this.pipelines) await p.start()
  }

  async stop(): Promise<void> {
    for (const p of this.pipelines) await p.stop()
  }

  /** Process one event; throws only if the signal aborts (the caller returns it to the queue). */
  async process(event: EventRecord, signal: AbortSignal): Promise<AckOptions> {
    if (event.pipeline !== undefined && !this.byName.has(event.pipeline)) {
      const error = `pipeline "${event.pipeline}" is not configured on this node`
      this.log.warn({ id: event.id, pipeline: event.pipeline }, 'An event names a pipeline this node does not run, so it was dead-lettered.')
      this.trace.add(event.id, 'deadlettered', { pipeline: event.pipeline, detail: error })
      return { deadletter: [{ pipeline: event.pipeline, error, attempts: 0 }] }
    }
    const entered: Pipeline[] = []
    for (const p of this.pipelines) if (await p.accepts(event)) entered.push(p)
    if (entered.length === 0) this.trace.add(event.id, 'unmatched')
    const results = await Promise.all(entered.map((p) => p.run(event, signal)))
    const ack: Required<AckOptions> = { deadletter: [], state: [] }
    for (const r of results) {
      if (r.status === 'skipped') continue
      ack.state.push(...r.state)
      if (r.status === 'failed' && r.deadletter) ack.deadletter.push(r.deadletter)
    }
    return ack
  }
}
