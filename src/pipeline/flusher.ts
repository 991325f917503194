// The clock of the stateful steps: flushes every stateful pipeline on a timer, and soon
// after a batch left something due (a window passed by the watermark). A flush runs
// under its pipeline's lock; its results go to the outputs first and its state changes
// (closed windows gone, expired keys forgotten) commit afterwards in their own write,
// so a crash in between emits the same results again after the restart, never loses
// them. A flush whose results cannot be delivered changes nothing and is tried again.
import type { Logger } from 'pino'
import { asError } from '../errors.js'
import type { EventQueue } from '../queue/types.js'
import type { Engine } from './engine.js'

export interface FlusherOptions {
  engine: Engine
  queue: EventQueue
  log: Logger
}

export class Flusher {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private requested = false
  private stopped = true
  private signal: AbortSignal | undefined

  constructor(private readonly options: FlusherOptions) {}

  /** Start the timer, if any stateful step wants one; `signal` cuts a flush's output retries short at shutdown. */
  start(signal: AbortSignal): void {
    const every = this.options.engine.flushEveryMs()
    if (every === undefined || !this.stopped) return
    this.stopped = false
    this.signal = signal
    this.timer = setInterval(() => this.request(), every)
    this.timer.unref()
  }

  /** Flush soon (coalesced with a flush already asked for). */
  request(): void {
    if (this.stopped) return
    this.requested = true
    this.running ??= this.loop().finally(() => {
      this.running = undefined
    })
  }

  /** Stop the timer and wait for a flush under way. Stopping a never-started flusher succeeds. */
  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  private async loop(): Promise<void> {
    while (this.requested && !this.stopped) {
      this.requested = false
      await this.flushAll()
    }
  }

  private async flushAll(): Promise<void> {
    const { engine, queue, log } = this.options
    for (const pipeline of engine.stateful()) {
      if (this.stopped) return
      const depth = queue.depth()
      const run = { now: Date.now(), idle: depth.unprocessed === 0 && depth.inflight === 0, signal: this.signal }
      let outcome
      try {
        outcome = await engine.flush(pipeline, run)
      } catch (err) {
        if (!this.signal?.aborted)
          log.error(
            { pipeline: pipeline.name, err: asError(err).message },
            'A flush of stateful steps failed; it is tried again on the next tick.',
          )
        continue
      }
      try {
        if (outcome.state.length > 0) await queue.ackBatch([], [], outcome.state)
        outcome.settle(true)
      } catch (err) {
        outcome.settle(false)
        log.error(
          { pipeline: pipeline.name, err: asError(err).message },
          'The state of a flush could not be written; its results may be emitted again.',
        )
      }
    }
  }
}
