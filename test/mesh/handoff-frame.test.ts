// The v2 handoff frame (src/mesh/handoff-frame.ts): each event's data travels as the
// text the sender stored when that text is laid out as the store writes it, and is
// serialized again otherwise; the receiver gets back the same events and the texts.
import { describe, expect, it } from 'vitest'
import { decodeHandoffFrame, encodeHandoffFrame, storedParts } from '../../src/mesh/handoff-frame.js'
import { prepare } from '../../src/queue/admission.js'
import { replayJson } from '../../src/queue/dead-letter.js'
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
    const events = [event('e1', { pipeline: 'p', meta: { k: 'v' } }), event('e2\n"odd"'), event('k-1', { keyed: true })]
    const stored = prepare(events).map((p) => p.json)
    // Stored as received, spaces and all: that text travels, not a new serialization.
    stored[1] = stored[1]!.replace('"n":', '"n" :   ')
    const frame = encodeHandoffFrame(envelope, events, stored)
    const decoded = decodeHandoffFrame(frame)
    expect(decoded.invalid).toBeUndefined()
    expect(decoded.body).toEqual({ v: 2, ...envelope, events })
    expect(decoded.dataTexts).toEqual([
      JSON.stringify(events[0]!.data),
      JSON.stringify(events[1]!.data).replace('"n":', '"n" :   '),
      JSON.stringify(events[2]!.data),
    ])
  })

  it('serializes the data again when a stored text is not laid out as the store writes it, or there is none', () => {
    const e = event('e1', { pipeline: 'p' })
    const head = JSON.stringify({ id: e.id, origin: e.origin, receivedAt: e.receivedAt, hops: e.hops, pipeline: 'p' })
    // Data before pipeline (an older serialization of the whole record).
    expect(storedParts(JSON.stringify({ id: e.id, origin: e.origin, receivedAt: 5, hops: 0, data: e.data, pipeline: 'p' }), e)).toBe(
      undefined,
    )
    expect(storedParts(`${head.slice(0, -1)},"data":{"a":1}}`, e)).toEqual({ head, data: '{"a":1}' })
    expect(storedParts(`${head.slice(0, -1)},"data":[1]`, e)).toBe(undefined)
    // keyed after data, as a replayed dead letter was once written.
    const replayed = { id: 'e1', origin: 'a', receivedAt: 5, hops: 0, data: { a: 1 }, keyed: true as const }
    expect(storedParts(JSON.stringify(replayed), replayed)).toBe(undefined)
    // Data first: the first ,"data": would be one inside it.
    const first = { data: { x: { y: 1, data: 2 } }, id: 'e1', origin: 'a', receivedAt: 5, hops: 0 }
    expect(storedParts(JSON.stringify(first), first)).toBe(undefined)
    expect(storedParts(undefined, e)).toBe(undefined)
    const decoded = decodeHandoffFrame(encodeHandoffFrame(envelope, [e, e], ['{"id":"other"}', undefined]))
    expect(decoded.dataTexts).toEqual([JSON.stringify(e.data), JSON.stringify(e.data)])
  })

  it('finds the head without building it but where meta may hold a "data" key, and sends what it stored', () => {
    // Meta's own "data" key comes before the record's: the head is built and compared.
    const withMeta = event('m1', { meta: { a: 'b', data: 'x' } })
    const [stored] = prepare([withMeta]).map((p) => p.json)
    expect(storedParts(stored, withMeta)).toEqual({
      head: JSON.stringify({ id: 'm1', origin: 'a', receivedAt: 5, hops: 0, meta: { a: 'b', data: 'x' } }),
      data: JSON.stringify(withMeta.data),
    })
    // Meta written after data (an older layout) is not the store's layout.
    expect(
      storedParts(
        JSON.stringify({ ...withMeta, meta: undefined, data: withMeta.data, extra: 1 }).replace(
          ',"extra":1',
          ',"meta":{"a":"b","data":"x"}',
        ),
        withMeta,
      ),
    ).toBe(undefined)
    // A replayed dead letter is stored as every event is, so its parts travel as stored.
    const letter = { event: event('k-2', { keyed: true }), pipeline: 'p', error: 'boom', attempts: 1, at: 1 }
    const replayed = { ...letter.event, pipeline: 'p' }
    expect(storedParts(replayJson(letter), replayed)).toEqual({
      head: JSON.stringify({ id: 'k-2', origin: 'a', receivedAt: 5, hops: 0, keyed: true, pipeline: 'p' }),
      data: JSON.stringify(replayed.data),
    })
    // A string holding the text ,"data": is escaped in JSON, so the first one is the key.
    const odd = event('id,"data":1', { pipeline: 'p,"data":' })
    const decoded = decodeHandoffFrame(
      encodeHandoffFrame(
        envelope,
        [odd],
        prepare([odd]).map((p) => p.json),
      ),
    )
    expect(decoded.body).toEqual({ v: 2, ...envelope, events: [odd] })
  })

  it('encodes and decodes a frame of many hundred KB a piece at a time, with the same bytes and texts as one string would give', () => {
    // Texts of every kind of UTF-8 (1 to 4 bytes a character), some bigger than a piece,
    // so that characters and texts fall across the pieces' edges at many offsets.
    const chars = ['a', 'é', '€', '😀', '"', '\\', '\n']
    const events = Array.from({ length: 700 }, (_, i) =>
      event(`e${i}`, { data: { i, s: chars[i % chars.length]!.repeat(i % 5 === 0 ? 3000 + i : 100 + i) } }),
    )
    const stored = prepare(events).map((p) => p.json)
    const frame = encodeHandoffFrame(envelope, events, stored)
    const heads = stored.map((s, i) => storedParts(s, events[i]!)!)
    const whole = `${JSON.stringify({ v: 2, ...envelope }).slice(0, -1)},"events":[${heads.map((p) => p.head).join(',')}],"dataLengths":[${heads.map((p) => p.data.length).join(',')}]}\n${heads.map((p) => p.data).join('')}`
    expect(frame.length).toBeGreaterThan(1024 * 1024)
    expect(frame.equals(Buffer.from(whole))).toBe(true)
    const decoded = decodeHandoffFrame(frame)
    expect(decoded.invalid).toBeUndefined()
    expect(decoded.body).toEqual({ v: 2, ...envelope, events })
    expect(decoded.dataTexts).toEqual(events.map((e) => JSON.stringify(e.data)))
  })

  it('refuses lengths that do not add up to the data, wherever the pieces end', () => {
    const events = Array.from({ length: 100 }, (_, i) => event(`e${i}`, { data: { s: '€'.repeat(1000) } }))
    const frame = encodeHandoffFrame(
      envelope,
      events,
      prepare(events).map((p) => p.json),
    )
    const newline = frame.indexOf(0x0a)
    const envelopeOf = (lengths: (n: number[]) => number[]) => {
      const parsed = JSON.parse(frame.subarray(0, newline).toString())
      parsed.dataLengths = lengths(parsed.dataLengths)
      return Buffer.concat([Buffer.from(JSON.stringify(parsed)), frame.subarray(newline)])
    }
    expect(decodeHandoffFrame(envelopeOf((n) => n.map((x, i) => (i === 99 ? x + 1 : x)))).invalid).toBe(
      "event 99's data length is not within the frame",
    )
    expect(decodeHandoffFrame(envelopeOf((n) => n.map((x, i) => (i === 99 ? x - 1 : x)))).invalid).toMatch(/data is not JSON|more data/)
    expect(decodeHandoffFrame(envelopeOf((n) => n.map((x, i) => (i === 0 ? -1 : x)))).invalid).toBe(
      "event 0's data length is not within the frame",
    )
    // The data of two events given to one: the texts still add up, the JSON does not.
    expect(decodeHandoffFrame(envelopeOf((n) => n.map((x, i) => (i === 50 ? x + n[51]! : i === 51 ? 0 : x)))).invalid).toBe(
      "event 50's data is not JSON",
    )
    expect(decodeHandoffFrame(Buffer.concat([frame, Buffer.from('{}')])).invalid).toBe('the frame holds more data than its events')
  })

  it('reads a frame without a newline as a v1 request', () => {
    const body = { v: 1, ...envelope, events: [event('e1')] }
    expect(decodeHandoffFrame(Buffer.from(JSON.stringify(body)))).toEqual({ body })
  })
})
