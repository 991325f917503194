// The stored form of an event (admission.ts recordJson): the head's fields in toRecord's
// order, data last, as JSON.stringify would write them, whatever the origin and numbers.
import { describe, expect, it } from 'vitest'
import { recordHeadJson, recordJson } from '../../src/queue/admission.js'
import type { EventRecord } from '../../src/queue/types.js'

describe('recordJson', () => {
  it('writes what JSON.stringify writes, field for field, as origins and numbers change', () => {
    const records: EventRecord[] = [
      { id: 'a', origin: 'node-a', receivedAt: 1_700_000_000_123, hops: 0, data: { n: 1 } },
      // Another origin, then the first again: a remembered origin must not stick.
      { id: 'b"\\', origin: 'nœud-ß "quoted"', receivedAt: 1.5, hops: 2, data: {} },
      { id: 'c', origin: 'node-a', receivedAt: -0, hops: Number.MAX_SAFE_INTEGER + 2, data: { x: [1] }, keyed: true },
      { id: 'd', origin: '', receivedAt: 1e21, hops: 1, data: { y: null }, pipeline: 'p', meta: { topic: 't/1' } },
    ]
    for (const r of records) {
      const { data, ...head } = r
      expect(recordHeadJson(r)).toBe(JSON.stringify(head))
      expect(JSON.parse(recordJson(r))).toEqual(JSON.parse(JSON.stringify({ ...head, data })))
      expect(recordJson(r)).toBe(`${JSON.stringify(head).slice(0, -1)},"data":${JSON.stringify(data)}}`)
    }
  })
})
