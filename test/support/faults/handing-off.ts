// What a kill -9 leaves in a sender's handing-off bucket (part of the fault harness: ../faults.ts).

import path from 'node:path'
import { Level } from 'level'
import * as keys from '../../../src/queue/durable/keys.js'

export interface PendingBatch {
  handoffId: string
  /** Peer id the batch is promised to. */
  peer: string
  cids: string[]
}

/**
 * Read the handing-off bucket of a stopped node's store (its process must be gone: the
 * store is locked while it runs). Read only; the layout is the queue's own (src/queue/durable/keys.ts).
 */
export async function readHandingOff(dataDir: string): Promise<PendingBatch[]> {
  const db = new Level<string, string>(path.join(dataDir, 'queue'), { valueEncoding: 'utf8' })
  await db.open()
  const batches = new Map<string, PendingBatch>()
  try {
    for await (const [dbKey, value] of db.iterator(keys.ranges.handingOff)) {
      const { handoffId, queueKey } = keys.parseHandoffKey(dbKey)
      const batch = batches.get(handoffId) ?? { handoffId, peer: '', cids: [] }
      batches.set(handoffId, batch)
      if (queueKey === '') batch.peer = (JSON.parse(value) as { peer: string }).peer
      else {
        const record = JSON.parse(value) as { id: string; data?: { cid?: unknown } }
        batch.cids.push(typeof record.data?.cid === 'string' ? record.data.cid : record.id)
      }
    }
  } finally {
    await db.close()
  }
  return [...batches.values()]
}
