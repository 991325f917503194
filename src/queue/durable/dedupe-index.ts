// Reading and adding to the durable dedupe index outside an enqueue group (layout:
// keys.ts; enqueue-plan.ts adds a group's ids in its own batch; dedupe-sweeper.ts
// expires them): whether ids were accepted within the window, and the entries that
// remember ids a peer accepted for this node.

import { randomUUID } from 'node:crypto'
import type { Level } from 'level'
import { isSeenWithin } from '../admission.js'
import { type Op, parseSeen, seenByTimeKey, seenKey } from './keys.js'

/** For each id, whether the index accepted it within `windowMs` of `now`. */
export async function seenWithin(db: Level<string, string>, ids: string[], now: number, windowMs: number): Promise<boolean[]> {
  const stored = await db.getMany(ids.map(seenKey))
  return stored.map((value) => isSeenWithin(value === undefined ? undefined : parseSeen(value).at, now, windowMs))
}

/** The puts that remember `ids` as accepted at `now`, with their time-ordered entry for the sweep. */
export function rememberOps(ids: string[], now: number): Op[] {
  const ops: Op[] = ids.map((id) => ({ type: 'put', key: seenKey(id), value: String(now) }))
  ops.push({ type: 'put', key: seenByTimeKey(now, `r${randomUUID()}`), value: JSON.stringify(ids) })
  return ops
}
