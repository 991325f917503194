// Every write of the durable queue goes through here: one atomic LevelDB batch. It is
// built as a chained batch (put and del calls) rather than handed over as an array of
// operation objects: abstract-level copies each object and the native side reads its
// properties one by one, and a 1,024-op batch of 1 KB values was measured at 6-11 ms of
// main-thread time that way against 1.4 ms chained (9 against 3 ms in all).

import type { Level } from 'level'
import type { Op } from './keys.js'

export async function writeBatch(db: Level<string, string>, ops: readonly Op[], sync: boolean): Promise<void> {
  const batch = db.batch()
  try {
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value)
      else batch.del(op.key)
    }
  } catch (err) {
    await batch.close()
    throw err
  }
  await batch.write({ sync })
}
