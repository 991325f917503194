// The opening/open/closing/closed state machine both backends share, run by their base
// class (abstract-queue.ts, as abstract-level owns it for its backends). Every public
// call runs through run(), which refuses it in the wrong state and counts it, so close()
// can wait for calls already under way before it closes the store underneath them.

import { BingeError } from '../errors.js'

export type LifecycleState = 'new' | 'opening' | 'open' | 'closing' | 'closed'

export class Lifecycle {
  private current: LifecycleState = 'new'
  private running = 0
  private settled: Array<() => void> = []
  private opening: Promise<unknown> | undefined

  /** `mapError`: what a failed call throws instead of its error (the durable queue's full-disk 503). */
  constructor(
    private readonly what: string,
    private readonly mapError: (err: unknown) => unknown = (err) => err,
  ) {}

  get state(): LifecycleState {
    return this.current
  }

  /** Throws unless open: BINGE_QUEUE_CLOSED once closing, BINGE_NOT_READY before. */
  assertOpen(): void {
    if (this.current === 'open') return
    if (this.current === 'closing' || this.current === 'closed') {
      throw new BingeError('BINGE_QUEUE_CLOSED', `${this.what} is closed`)
    }
    throw new BingeError('BINGE_NOT_READY', `${this.what} is not open yet`, { retryAfter: 1 })
  }

  /** Run a call while open; close() waits for it. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.assertOpen()
    this.running++
    try {
      return await fn()
    } catch (err) {
      throw this.mapError(err)
    } finally {
      this.running--
      if (this.running === 0) {
        const settled = this.settled
        this.settled = []
        for (const resolve of settled) resolve()
      }
    }
  }

  /** new -> opening -> open; a failed open goes back to new so it may be retried. */
  async open<T>(fn: () => Promise<T>): Promise<T> {
    if (this.current !== 'new') {
      throw new BingeError('BINGE_INTERNAL', `${this.what} cannot open when ${this.current}`)
    }
    this.current = 'opening'
    const opening = fn()
    this.opening = opening
    try {
      const result = await opening
      this.current = 'open'
      return result
    } catch (err) {
      this.current = 'new'
      throw err
    } finally {
      this.opening = undefined
    }
  }

  /**
   * Refuse new calls, wait for running ones, then run `fn` (release the store).
   * Closing twice, or closing a queue never opened, succeeds.
   */
  async close(fn: () => Promise<void>): Promise<void> {
    if (this.current === 'closed' || this.current === 'closing') return
    // Closing while opening: let the open finish (or fail) first, then close what it opened.
    if (this.opening !== undefined) await this.opening.catch(() => undefined)
    if (this.current === 'new') {
      this.current = 'closed'
      return
    }
    this.current = 'closing'
    if (this.running > 0) await new Promise<void>((resolve) => this.settled.push(resolve))
    try {
      await fn()
    } finally {
      this.current = 'closed'
    }
  }
}
