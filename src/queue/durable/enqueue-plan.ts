// Turns one group of enqueue calls into one batch for the durable queue: one getMany
// on the dedupe index for every indexed id and batch entry of the group, admission call
// by call (shared rules, ../admission.ts), then the puts of each accepted event (the
// event under a fresh queue key, and its dedupe entry if remembered), of each accepted
// batch's entry, and one time-ordered entry listing the group's new entries for the
// sweep. Ids this node just made (EnqueueOptions.newIds) are not indexed: nobody can
// send them again.
// Invariant: the batch holds an event and its dedupe entries together, so after any
// crash an id is either accepted and remembered, or neither.

import type { Level } from 'level'
import { BingeError } from '../../errors.js'
import { type PreparedEvent, type Room, admit, dedupeIds, remembered } from '../admission.js'
import type { Outcome } from '../group-commit.js'
import { type Op, nextSeqOps, parseSeen, seenByTimeKey, seenKey, seenValue, unprocessedKey } from './keys.js'
import { seqString } from '../queue-key.js'
import type { EnqueueResult } from '../types.js'

export interface EnqueuePlan {
  outcomes: Array<Outcome<EnqueueResult[]>>
  /** Empty when nothing new was accepted: then there is nothing to write. */
  ops: Op[]
  added: number
  addedBytes: number
  /** The accepted events, in sequence order. */
  written: PreparedEvent[]
  nextSeq: number
}

export interface PlanContext {
  now: number
  dedupeWindowMs: number
  room: Room
  nextSeq: number
  /** The error a call refused for want of room gets instead of BINGE_QUEUE_FULL (the disk is low). Other refusals (a reused key) stand. */
  noRoom?: () => BingeError
}

export async function planEnqueue(db: Level<string, string>, calls: PreparedEvent[][], ctx: PlanContext): Promise<EnqueuePlan> {
  const ids = dedupeIds(calls)
  const stored = await db.getMany(ids.map(seenKey))
  const seen = new Map<string, { at: number; fingerprint?: string }>()
  ids.forEach((id, i) => {
    if (stored[i] !== undefined) seen.set(id, parseSeen(stored[i]!))
  })
  const admission = {
    now: ctx.now,
    dedupeWindowMs: ctx.dedupeWindowMs,
    seenAt: (id: string) => seen.get(id)?.at,
    fingerprintOf: (id: string) => seen.get(id)?.fingerprint,
    taken: new Set<string>(),
    room: { ...ctx.room },
  }
  const plan: EnqueuePlan = { outcomes: [], ops: [], added: 0, addedBytes: 0, written: [], nextSeq: ctx.nextSeq }
  const accepted: string[] = []
  for (const events of calls) {
    const admitted = admit(events, admission)
    if (admitted instanceof BingeError) {
      const error = ctx.noRoom && admitted.code === 'BINGE_QUEUE_FULL' ? ctx.noRoom() : admitted
      plan.outcomes.push({ ok: false, error })
      continue
    }
    for (const fresh of admitted.fresh) {
      const key = seqString(plan.nextSeq++)
      plan.ops.push({ type: 'put', key: unprocessedKey(key), value: fresh.json })
      plan.written.push(fresh)
      if (remembered(fresh)) {
        plan.ops.push({ type: 'put', key: seenKey(fresh.record.id), value: seenValue(ctx.now, fresh.fingerprint) })
        accepted.push(fresh.record.id)
      }
      plan.added++
      plan.addedBytes += fresh.bytes
    }
    if (admitted.batch !== undefined) {
      plan.ops.push({ type: 'put', key: seenKey(admitted.batch), value: seenValue(ctx.now) })
      accepted.push(admitted.batch)
    }
    plan.outcomes.push({ ok: true, value: admitted.results })
  }
  if (accepted.length > 0) {
    plan.ops.push({ type: 'put', key: seenByTimeKey(ctx.now, seqString(ctx.nextSeq)), value: JSON.stringify(accepted) })
  }
  if (plan.added > 0) plan.ops.push(...nextSeqOps(plan.nextSeq))
  return plan
}
