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

  /**
   * Process a batch of events; one AckOptions per event, in order. Throws only if the
   * signal aborts (the caller returns the events to the queue).
   */
  async processBatch(events: EventRecord[], signal: AbortSignal): Promise<AckOptions[]> {
    const acks: Array<Required<AckOptions>> = events.map(() => ({ deadletter: [], state: [] }))
    const entered = new Map<Pipeline, number[]>()
    for (const [i, event] of events.entries()) {
      if (event.pipeline !== undefined && !this.byName.has(event.pipeline)) {
        const error = `pipeline "${event.pipeline}" is not configured on this node`
        this.log.warn({ id: event.id, pipeline: event.pipeline }, 'An event names a pipeline this node does not run, so it was dead-lettered.')
        this.trace.add(event.id, 'deadlettered', { pipeline: event.pipeline, detail: error })
        acks[i]!.deadletter.push({ pipeline: event.pipeline, error, attempts: 0 })
        continue
      }
      let matched = false
      for (const p of this.pipelines) {
        if (!(await p.accepts(event))) continue
        matched = true
        const list = entered.get(p) ?? []
        list.push(i)
        entered.set(p, list)
      }
      if (!matched) this.trace.add(event.id, 'unmatched')
    }
    await Promise.all([...entered].map(async ([pipeline, indexes]) => {
      const results = await pipeline.runBatch(indexes.map((i) => events[i]!), signal)
      results.forEach((r, k) => {
        if (r.status === 'skipped') return
        const ack = acks[indexes[k]!]!
        ack.state.push(...r.state)
        if (r.status === 'failed' && r.deadletter) ack.deadletter.push(r.deadletter)
      })
    }))
    return acks
  }
}
