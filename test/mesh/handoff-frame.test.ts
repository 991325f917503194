// The v2 handoff frame (src/mesh/handoff-frame.ts): each event's data travels as the
// text the sender stored when that text is laid out as the store writes it, and is
// serialized again otherwise; the receiver gets back the same events and the texts.
import { describe, expect, it } from 'vitest'
import { decodeHandoffFrame, encodeHandoffFrame, storedDataText } from '../../src/mesh/handoff-frame.js'
import { prepare } from '../../src/queue/admission.js'
import type { EventRecord } from '../../src/queue/types.js'

const envelope = { handoffId: 'h1', kind: 'overflow' as const, from: 'a' }
const event = (id: string, extra: Partial<EventRecord> = {}): EventRecord => ({
  id,
  origin: 'a',
  receivedAt: 5,
  hops: 0,
  data: { text: 'line\nbreak "quoted" é 😀', n: [1, 2.5, null] },
  ...extra,
})

describe('the v2 handoff frame', () => {
  it('sends the data part of each stored text as it is, and the receiver gets the same events and texts', () => {
    const events = [event('e1', { pipeline: 'p', meta: { k: 'v' } }), event('e2\n"odd"')]
    const stored = prepare(events).map((p) => p.json)
    // Stored as received, spaces and all: that text travels, not a new serialization.
    stored[1] = stored[1]!.replace('"n":', '"n" :   ')
    const frame = encodeHandoffFrame(envelope, events, stored)
    const decoded = decodeHandoffFrame(frame)
    expect(decoded.invalid).toBeUndefined()
    expect(decoded.body).toEqual({ v: 2, ...envelope, events })
    expect(decoded.dataTexts).toEqual([JSON.stringify(events[0]!.data), JSON.stringify(events[1]!.data).replace('"n":', '"n" :   ')])
  })

  it('serializes the data again when a stored text is not laid out as the store writes it, or there is none', () => {
    const e = event('e1', { pipeline: 'p' })
    const head = JSON.stringify({ id: e.id, origin: e.origin, receivedAt: e.receivedAt, hops: e.hops, pipeline: 'p' })
    // Data before pipeline (an older serialization of the whole record).
    expect(storedDataText(JSON.stringify({ id: e.id, origin: e.origin, receivedAt: 5, hops: 0, data: e.data, pipeline: 'p' }), head)).toBe(
      undefined,
    )
    expect(storedDataText(`${head.slice(0, -1)},"data":{"a":1}}`, head)).toBe('{"a":1}')
    expect(storedDataText(`${head.slice(0, -1)},"data":[1]`, head)).toBe(undefined)
    expect(storedDataText(undefined, head)).toBe(undefined)
    const decoded = decodeHandoffFrame(encodeHandoffFrame(envelope, [e, e], ['{"id":"other"}', undefined]))
    expect(decoded.dataTexts).toEqual([JSON.stringify(e.data), JSON.stringify(e.data)])
  })

  it('reads a frame without a newline as a v1 request', () => {
    const body = { v: 1, ...envelope, events: [event('e1')] }
    expect(decodeHandoffFrame(Buffer.from(JSON.stringify(body)))).toEqual({ body })
  })
})
