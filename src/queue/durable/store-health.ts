// Whether the LevelDB store may be written, and its way back after the disk filled up.
// Found by experiment with classic-level 3 on a full tmpfs: a failed flush or
// compaction latches LevelDB (every later write fails, even with space back), and a
// failed log append does not latch but leaves a torn record, after which writes
// "succeed" and are silently dropped at the next open (500 of 500 lost). So after the
// first write that fails for want of space no write may reach that instance again: the
// store is faulted, every write is refused (503) until it is closed and reopened, and
// a write that was in flight when the fault came is treated as failed too.

import { BingeError } from '../../errors.js'

const full = /no space left on device|disk quota exceeded|ENOSPC|EDQUOT/i

/** Did this write fail because the volume is full? classic-level says so only in the message. */
export function isDiskFull(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') return true
  const cause = (err as { cause?: unknown }).cause
  return full.test(err.message) || (cause !== undefined && cause !== err && isDiskFull(cause))
}

/** Seconds a client is told to wait while the store is faulted. */
export const FAULT_RETRY_AFTER_S = 5

export interface StoreHealthOptions {
  /** Close and reopen the store, and bring the in-memory state in line with it; throws if it cannot yet. */
  reopen: () => Promise<void>
  onFault?: (err: Error) => void
  onHealed?: (attempts: number, ms: number) => void
  onRetry?: (err: unknown, attempt: number) => void
  firstRetryMs?: number
  maxRetryMs?: number
}

export class StoreHealth {
  private cause?: Error
  private since = 0
  /** Bumped at each fault: a write that started under another generation overlapped one. */
  private gen = 0
  private timer?: NodeJS.Timeout
  private attempts = 0
  private stopped = false

  constructor(private readonly options: StoreHealthOptions) {}

  get faulted(): boolean {
    return this.cause !== undefined
  }

  get generation(): number {
    return this.gen
  }

  /** The error for a write refused while faulted. */
  refusal(cause?: unknown): BingeError {
    return new BingeError(
      'BINGE_NOT_READY',
      'the data volume is full: the node takes no events until space is freed and it has reopened its store; nothing it acknowledged is lost. An event refused so may still have been stored: retry with the same Idempotency-Key',
      { retryAfter: FAULT_RETRY_AFTER_S, cause: cause ?? this.cause },
    )
  }

  /** Throws the refusal while faulted. */
  assertWritable(): void {
    if (this.cause) throw this.refusal()
  }

  /**
   * Classify a failed store call: a full disk faults the store (once) and comes back as
   * the 503 refusal; while faulted, anything the reopen broke (the store closed under a
   * read) too. Other errors pass through.
   */
  failed(err: unknown): unknown {
    // Already classified (this refusal among them, whose cause says ENOSPC): as it is.
    if (err instanceof BingeError) return err
    if (isDiskFull(err)) {
      if (!this.cause) {
        this.cause = err as Error
        this.since = performance.now()
        this.gen++
        this.attempts = 0
        this.options.onFault?.(this.cause)
        this.schedule()
      }
      return this.refusal(err)
    }
    const code = (err as { code?: unknown } | undefined)?.code
    if (this.cause && typeof code === 'string' && code.startsWith('LEVEL_')) return this.refusal(err)
    return err
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule(): void {
    if (this.stopped || this.timer) return
    const first = this.options.firstRetryMs ?? 250
    const delay = Math.min(this.options.maxRetryMs ?? 2_000, first * 2 ** Math.min(this.attempts, 10))
    this.timer = setTimeout(() => void this.heal(), delay)
    this.timer.unref()
  }

  private async heal(): Promise<void> {
    this.timer = undefined
    if (this.stopped || !this.cause) return
    this.attempts++
    try {
      await this.options.reopen()
    } catch (err) {
      this.options.onRetry?.(err, this.attempts)
      this.schedule()
      return
    }
    this.cause = undefined
    this.options.onHealed?.(this.attempts, performance.now() - this.since)
  }
}
