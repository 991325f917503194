// The one way a StateOp is applied, by the durable queue (as store operations), the
// memory queue and `binge run` (to a Map): in order, a put storing the value's JSON
// (undefined, which JSON cannot hold, as null), a del removing the key. Stored as JSON,
// state read back is always a copy, never an object a step still holds.

import type { StateOp } from './types.js'

/** Where state changes go: a Map<string, string> is one. */
export interface StateSink {
  set(key: string, json: string): unknown
  delete(key: string): unknown
}

function encodeState(value: unknown): string {
  return JSON.stringify(value) ?? 'null'
}

export function decodeState(json: string | undefined): unknown | undefined {
  return json === undefined ? undefined : (JSON.parse(json) as unknown)
}

/** Apply changes to `sink` in order (a later op on the same key wins). */
export function applyStateOps(changes: readonly StateOp[], sink: StateSink): void {
  for (const op of changes) {
    if (op.type === 'put') sink.set(op.key, encodeState(op.value))
    else sink.delete(op.key)
  }
}
