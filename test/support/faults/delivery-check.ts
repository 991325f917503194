// The exactly-once check (part of the fault harness: ../faults.ts).

import type { IngestLedger } from '../node-process.js'
import type { HookRecord } from './hook-server.js'

/** Events one worker dequeues at once and holds in flight until its output answered (src/pipeline/workers.ts). */
export const WORKER_BATCH = 32

/**
 * Batches one worker can have output but not yet acked when it dies: the one whose ack
 * is being written and the next, which runs meanwhile (src/pipeline/workers.ts writes an
 * ack in the background while the next batch runs). A batch taken ahead has not been
 * output, so it adds none.
 */
export const OUTPUT_UNACKED_BATCHES = 2

/** A node was gone (kill -9 until its restart was spawned) or frozen (SIGSTOP until SIGCONT). */
export interface Disruption {
  node: string
  kind: 'kill' | 'stop'
  at: number
  resumedAt: number
  workers: number
}

export interface DeliveryCheck {
  acked: number
  /** Acknowledged ids no output ever received. */
  lost: string[]
  /** Output ids that were never sent, or were refused: must be none. */
  phantoms: string[]
  /** Ids output by two or more different nodes: only a handoff can do that. */
  handoffDuplicates: Array<{ cid: string; nodes: string[] }>
  /** Same-node extra copies explained by a disruption of that node (at-least-once outputs). */
  reoutputs: number
  /** Same-node extra copies with no disruption of that node between them: a handoff (or queue) bug. */
  unexplained: Array<{ cid: string; node: string }>
  /**
   * Events found in a killed sender's handing-off bucket that the sender output itself
   * after its restart, or that no node output (filled in by the sender-kill rounds).
   * Whether the peer they were promised to output them is not checked: a peer pushed
   * over its own high-water mark by the resends may hand them on one more hop.
   */
  misrouted: Array<{ cid: string; promisedTo: string; outputBy: string[] }>
  /** Disruptions followed by more re-outputs than the node could have had in flight. */
  overBound: Array<{ node: string; kind: string; at: number; count: number; bound: number }>
}

/**
 * Every acknowledged id must come out of some output, and no id may come out of two
 * nodes: a handoff moves an event from one node's disk to another's, so an id output
 * by two nodes was processed by both, which is exactly the duplicate the handoff must
 * never make.
 *
 * The same node outputting an id twice is allowed only as the at-least-once of
 * outputs: a node killed (or frozen past its output timeout) after its output POSTed
 * a batch but before it acked the batch in its queue outputs that batch again after it
 * restarts. So each such pair of copies must straddle a disruption of that node (the
 * first copy read before the node came back, the second after it went away), and the
 * copies attributed to one disruption are bounded by what the node could have had in
 * flight then: each of its `workers` holds at most OUTPUT_UNACKED_BATCHES batches of
 * WORKER_BATCH events output and not yet acked. A handoff bug that enqueued a
 * batch twice on one node would either show copies with no disruption between them
 * or exceed that bound. (The hook always answers 200 well within the output timeout,
 * so an output retry, the other source of same-node copies, never happens here.)
 */
export function checkDelivery(ledger: IngestLedger, records: HookRecord[], disruptions: Disruption[]): DeliveryCheck {
  const byCid = new Map<string, HookRecord[]>()
  for (const r of records) {
    const list = byCid.get(r.cid)
    if (list) list.push(r)
    else byCid.set(r.cid, [r])
  }
  const check: DeliveryCheck = {
    acked: ledger.acked.size,
    lost: [...ledger.acked].filter((cid) => !byCid.has(cid)),
    phantoms: [],
    handoffDuplicates: [],
    reoutputs: 0,
    unexplained: [],
    misrouted: [],
    overBound: [],
  }
  const attributed = new Map<Disruption, number>()
  for (const [cid, copies] of byCid) {
    if (!ledger.acked.has(cid) && !ledger.unknown.has(cid)) check.phantoms.push(cid)
    if (copies.length === 1) continue
    const nodes = [...new Set(copies.map((c) => c.node))]
    if (nodes.length > 1) check.handoffDuplicates.push({ cid, nodes })
    for (const node of nodes) {
      const mine = copies.filter((c) => c.node === node).sort((x, y) => x.at - y.at)
      for (let i = 1; i < mine.length; i++) {
        const first = mine[i - 1]!.at
        const again = mine[i]!.at
        const d = disruptions.filter((x) => x.node === node && first <= x.resumedAt && again >= x.at).sort((x, y) => x.at - y.at)[0]
        if (!d) {
          check.unexplained.push({ cid, node })
          continue
        }
        check.reoutputs++
        attributed.set(d, (attributed.get(d) ?? 0) + 1)
      }
    }
  }
  for (const [d, count] of attributed) {
    const bound = d.workers * OUTPUT_UNACKED_BATCHES * WORKER_BATCH
    if (count > bound) check.overBound.push({ node: d.node, kind: d.kind, at: d.at, count, bound })
  }
  return check
}

/** The figures of a check as one line, and whether it passes. */
export function summarize(check: DeliveryCheck): { ok: boolean; line: string } {
  const ok =
    check.lost.length === 0 &&
    check.phantoms.length === 0 &&
    check.handoffDuplicates.length === 0 &&
    check.unexplained.length === 0 &&
    check.overBound.length === 0 &&
    check.misrouted.length === 0
  const line =
    `acked ${check.acked}, lost ${check.lost.length}, handoff duplicates ${check.handoffDuplicates.length}, ` +
    `unexplained same-node duplicates ${check.unexplained.length}, re-outputs after kills ${check.reoutputs}` +
    `${check.misrouted.length > 0 ? `, promised to a peer but output by the sender or nowhere ${check.misrouted.length}` : ''}` +
    `${check.overBound.length > 0 ? ` (over the in-flight bound: ${JSON.stringify(check.overBound)})` : ''}, phantoms ${check.phantoms.length}`
  return { ok, line }
}
