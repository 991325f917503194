// `workers` loops that take events from the queue, run them through the engine and ack
// them. On stop, each worker finishes the event it holds or, if its retries are cut
// short, returns it to the queue: an event is never acked without having been handled.
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import type { EventQueue } from '../queue/types.js'
import type { TraceStore } from '../trace.js'
import { abortableSleep } from '../util/backoff.js'
import type { Engine } from './engine.js'

export interface WorkerPoolOptions {
  workers: number
  queue: EventQueue
  engine: Engine
  log: Logger
  trace: TraceStore
}

export class WorkerPool {
  private controller?: AbortController
  private loops: Promise<void>[] = []

  constructor(private readonly options: WorkerPoolOptions) {}

  start(): void {
    if (this.controller) return
    this.controller = new AbortController()
    const signal = this.controller.signal
    this.loops = Array.from({ length: this.options.workers }, () => this.loop(signal))
  }

  /** Stop taking events; give workers `graceMs` to finish, then cut their retries short. */
  async stop(graceMs = 10_000): Promise<void> {
    const controller = this.controller
    if (!controller) return
    this.stopping = true
    const all = Promise.all(this.loops)
    const timer = setTimeout(() => controller.abort(new Error('shutting down')), graceMs)
    this.wake.abort()
    await all
    clearTimeout(timer)
    controller.abort()
    this.controller = undefined
  }

  private stopping = false
  private wake = new AbortController()

  private async loop(signal: AbortSignal): Promise<void> {
    const { queue, engine, log, trace } = this.options
    while (!this.stopping && !signal.aborted) {
      let batch
      try {
        batch = await queue.dequeue(1)
      } catch (err) {
        if (this.stopping) return
        log.error({ err: asError(err).message }, 'A worker could not take an event from the queue and will try again.')
        await abortableSleep(1000, this.wake.signal).catch(() => {})
        continue
      }
      const event = batch[0]
      if (!event) {
        await queue.waitForWork(this.wake.signal).catch(() => {})
        continue
      }
      trace.add(event.id, 'dequeued')
      try {
        const ack = await engine.process(event, signal)
        await queue.ack(event, ack)
        trace.add(event.id, 'acked')
      } catch (err) {
        // Aborted mid-retry or a store failure: give the event back rather than ack it.
        await queue.nack([event]).catch((nackErr) => log.error({ id: event.id, err: asError(nackErr).message }, 'An event could not be returned to the queue; it stays in flight and is recovered at the next start.'))
        if (!signal.aborted && !this.stopping) {
          log.error({ id: event.id, err: asError(err).message }, 'Processing an event failed unexpectedly; it was returned to the queue.')
          await abortableSleep(1000, this.wake.signal).catch(() => {})
        }
      }
    }
  }
}
