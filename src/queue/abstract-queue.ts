// The public surface of every queue backend (EventQueue, types.ts), in abstract-level's
// shape: each public method here checks the lifecycle state and its arguments, answers
// the calls that ask for nothing (no events, no ids, a count under one) without the
// backend, and only then calls the backend's protected `_method`. So the state machine
// (lifecycle.ts), the checks and their errors are one copy for every backend, and a
// backend is its storage alone.
//
// Design constraints:
// - Every call but depth() and diskStatus() runs inside the lifecycle: refused unless
//   open (BINGE_NOT_READY, BINGE_QUEUE_CLOSED), and counted, so close() waits for the
//   calls already under way before it calls _close() and releases the store.
// - Checks done here touch no backend state: what must be checked atomically with a
//   write (an event still in flight, a handoff id still pending) is checked by the
//   backend inside its own critical section, where the write is.
// - A backend's error leaves through _mapError (the durable queue's full disk: a 503).

import { BingeError } from '../errors.js'
import { type PreparedEvent, prepare, toRecord } from './admission.js'
import { checkHandoffId, takeLimit } from './handoff-book.js'
import { Lifecycle } from './lifecycle.js'
import { decodeState } from './state-ops.js'
import type {
  AckOptions,
  DeadLetter,
  DeadLetterInput,
  DiskStatus,
  EnqueueOptions,
  EnqueueResult,
  EventQueue,
  EventRecord,
  HandoffBatch,
  QueueDepth,
  QueuedEvent,
  RecoveryReport,
  StateOp,
  TakeForHandoffOptions,
} from './types.js'
import { WorkSignal } from './work-signal.js'

/** `listDeadletter`'s limit as abstract-level reads one: a whole number from 0, else no limit. */
function deadletterLimit(limit: number | undefined): number {
  return limit !== undefined && Number.isInteger(limit) && limit >= 0 ? limit : Number.POSITIVE_INFINITY
}

export abstract class AbstractQueue implements EventQueue {
  abstract readonly mode: 'durable' | 'memory'
  protected readonly life: Lifecycle
  /** Wakes waitForWork; a backend notifies it whenever unprocessed events may have appeared. */
  protected readonly work = new WorkSignal()
  /** Clock for dedupe, dead-letter and handoff times; tests inject one. */
  protected readonly now: () => number

  constructor(what: string, now: (() => number) | undefined) {
    this.life = new Lifecycle(what, (err) => this._mapError(err))
    this.now = now ?? Date.now
  }

  open(): Promise<RecoveryReport> {
    return this.life.open(() => this._open())
  }

  close(): Promise<void> {
    return this.life.close(async () => {
      try {
        await this._close()
      } finally {
        // Waiters see the queue is no longer open; their next call is refused.
        this.work.notify()
      }
    })
  }

  enqueue(events: EventRecord[], options?: EnqueueOptions): Promise<EnqueueResult[]> {
    return this.life.run(async () => {
      if (events.length === 0) return []
      return this._enqueue(prepare(events, options))
    })
  }

  dequeue(max: number): Promise<QueuedEvent[]> {
    return this.life.run(async () => {
      const limit = Math.floor(max)
      if (!(limit > 0)) return []
      return this._dequeue(limit)
    })
  }

  async waitForWork(signal?: AbortSignal): Promise<void> {
    this.life.assertOpen()
    return this.work.wait(() => this._hasWork() || this.life.state !== 'open', signal)
  }

  ack(event: QueuedEvent, options: AckOptions = {}): Promise<void> {
    return this.ackBatch([event], [options])
  }

  ackBatch(events: QueuedEvent[], acks: AckOptions[], state: StateOp[] = []): Promise<void> {
    return this.life.run(async () => {
      if (acks.length !== events.length) {
        throw new BingeError('BINGE_INTERNAL', `ackBatch got ${events.length} events and ${acks.length} acks`)
      }
      if (events.length === 0 && state.length === 0) return
      return this._ackBatch(events, acks, state)
    })
  }

  nack(events: QueuedEvent[]): Promise<void> {
    return this.life.run(async () => {
      if (events.length === 0) return
      return this._nack(events)
    })
  }

  listDeadletter(limit?: number): Promise<DeadLetter[]> {
    return this.life.run(async () => {
      const max = deadletterLimit(limit)
      if (max === 0) return []
      return (await this._listDeadletter(max)).map((json) => JSON.parse(json) as DeadLetter)
    })
  }

  putDeadletter(event: EventRecord, letter: DeadLetterInput): Promise<void> {
    return this.life.run(() => this._putDeadletter(toRecord(event), letter))
  }

  replayDeadletter(ids?: string[]): Promise<string[]> {
    return this.life.run(async () => {
      if (ids !== undefined && ids.length === 0) return []
      return this._replayDeadletter(ids)
    })
  }

  getState(key: string): Promise<unknown | undefined> {
    return this.life.run(async () => decodeState(await this._getState(key)))
  }

  scanState(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    return this.life.run(async () => (await this._scanState(prefix)).map(([key, json]) => ({ key, value: decodeState(json) })))
  }

  takeForHandoff(max: number, options: TakeForHandoffOptions): Promise<HandoffBatch | undefined> {
    return this.life.run(async () => {
      checkHandoffId(options.handoffId)
      // No early return for a limit of 0: a pending id is refused whatever the limit.
      return this._takeForHandoff(takeLimit(max), options)
    })
  }

  completeHandoff(handoffId: string): Promise<void> {
    return this.life.run(() => this._completeHandoff(handoffId))
  }

  returnHandoff(handoffId: string): Promise<void> {
    return this.life.run(() => this._returnHandoff(handoffId))
  }

  pendingHandoffs(): Promise<HandoffBatch[]> {
    return this.life.run(() => this._pendingHandoffs())
  }

  seen(ids: string[]): Promise<boolean[]> {
    return this.life.run(async () => {
      if (ids.length === 0) return []
      return this._seen(ids)
    })
  }

  remember(ids: string[]): Promise<void> {
    return this.life.run(async () => {
      if (ids.length === 0) return
      return this._remember(ids)
    })
  }

  /** Forget dedupe entries older than the window now (a timer does it in the background); returns how many ids. */
  sweepDedupe(): Promise<number> {
    return this.life.run(() => this._sweepDedupe())
  }

  abstract depth(): QueueDepth
  abstract diskStatus(): DiskStatus | undefined

  /** What a failed call throws instead of its error; the error itself unless a backend says otherwise. */
  protected _mapError(err: unknown): unknown {
    return err
  }

  /** Are there unprocessed events a dequeue could take now? */
  protected abstract _hasWork(): boolean
  protected abstract _open(): Promise<RecoveryReport>
  protected abstract _close(): Promise<void>
  /** At least one event, checked and serialized (admission.ts). */
  protected abstract _enqueue(events: PreparedEvent[]): Promise<EnqueueResult[]>
  /** `limit` is a whole number from 1. */
  protected abstract _dequeue(limit: number): Promise<QueuedEvent[]>
  /** As many acks as events; events or state not both empty. Claims the events (claims.ts) before writing. */
  protected abstract _ackBatch(events: QueuedEvent[], acks: AckOptions[], state: StateOp[]): Promise<void>
  /** At least one event. Claims the events (claims.ts) before writing. */
  protected abstract _nack(events: QueuedEvent[]): Promise<void>
  /** The stored JSON of the first `limit` dead letters (from 1; Infinity: all), in letter-id order. */
  protected abstract _listDeadletter(limit: number): Promise<string[]>
  /** Keep one never-queued event as a dead letter (under queue key ''); durable, as an enqueue, when it resolves. */
  protected abstract _putDeadletter(record: EventRecord, letter: DeadLetterInput): Promise<void>
  /** `ids` absent (all) or not empty. */
  protected abstract _replayDeadletter(ids: string[] | undefined): Promise<string[]>
  /** The stored JSON of one state entry (state-ops.ts). */
  protected abstract _getState(key: string): Promise<string | undefined>
  /** [key, stored JSON] of every state entry under `prefix`, in key order. */
  protected abstract _scanState(prefix: string): Promise<Array<[string, string]>>
  /** The id is well formed; the backend refuses one still pending (handoff-book.ts), in the same critical section as the take. */
  protected abstract _takeForHandoff(limit: number, options: TakeForHandoffOptions): Promise<HandoffBatch | undefined>
  protected abstract _completeHandoff(handoffId: string): Promise<void>
  protected abstract _returnHandoff(handoffId: string): Promise<void>
  protected abstract _pendingHandoffs(): Promise<HandoffBatch[]>
  /** At least one id. */
  protected abstract _seen(ids: string[]): Promise<boolean[]>
  /** At least one id. */
  protected abstract _remember(ids: string[]): Promise<void>
  protected abstract _sweepDedupe(): Promise<number>
}
