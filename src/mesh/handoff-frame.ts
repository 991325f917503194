// The bytes of a handoff request (v2). One line of JSON, the envelope, with each event's
// fields but its data, then a newline and the events' data as JSON texts, one after
// another, their lengths (UTF-16 code units) listed in the envelope:
//
//   {"v":2,"handoffId":…,"kind":…,"from":…,"events":[{"id":…,…},…],"dataLengths":[…]}\n{…data 0…}{…data 1…}…
//
// Why: the sender has each event as the JSON text it stored, data last (admission.ts
// writes it so), and sends that text's data part as it is, with no JSON.stringify of the
// batch; the receiver gets each event's data as a text of its own, so it knows its size
// without serializing it again, and can store the text as received. A newline never
// occurs in JSON.stringify's output, so the first one ends the envelope. A frame
// without one is a v1 request (the whole frame one JSON object, events with their data).
import { recordHeadJson } from '../queue/admission.js'
import type { EventRecord } from '../queue/types.js'

/** The request's fields besides its events. */
export interface HandoffEnvelope {
  handoffId: string
  kind: 'overflow' | 'route'
  from: string
}

/** A decoded request frame: the body, as v1 spells it, and each event's data as its text (v2). */
export interface DecodedHandoff {
  body: unknown
  dataTexts?: string[]
  /** Why the frame is not a request at all (refused with this reason). */
  invalid?: string
}

const decoder = new TextDecoder()
const dataKey = ',"data":'

/**
 * The data part of `stored` (the event's stored JSON) when it is `head` with `,"data":`
 * and the data appended, as the store writes it; undefined when it is not laid out so
 * (written by an older version, say), and the data is serialized again.
 */
export function storedDataText(stored: string | undefined, head: string): string | undefined {
  if (stored === undefined) return undefined
  const open = head.length - 1
  if (stored.length < open + dataKey.length + 2 || stored.charCodeAt(stored.length - 1) !== 0x7d) return undefined
  if (!stored.startsWith(dataKey, open) || !stored.startsWith(head.slice(0, open))) return undefined
  return stored.slice(open + dataKey.length, -1)
}

/** The v2 frame of a batch; `texts[i]`, if given, is event i's stored JSON, whose data part is sent as it is. */
export function encodeHandoffFrame(envelope: HandoffEnvelope, events: EventRecord[], texts?: ReadonlyArray<string | undefined>): Buffer {
  const heads: string[] = []
  const datas: string[] = []
  const lengths: number[] = []
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!
    const head = recordHeadJson(e)
    const data = storedDataText(texts?.[i], head) ?? JSON.stringify(e.data)
    heads.push(head)
    datas.push(data)
    lengths.push(data.length)
  }
  const { handoffId, kind, from } = envelope
  const open = JSON.stringify({ v: 2, handoffId, kind, from }).slice(0, -1)
  return Buffer.from(`${open},"events":[${heads.join(',')}],"dataLengths":[${lengths.join(',')}]}\n${datas.join('')}`, 'utf8')
}

/**
 * A request frame's bytes as the body receiveHandoff checks (v2: each event's data
 * parsed from its text, which comes along); what the body's schema cannot judge (the
 * lengths, the texts' JSON) is judged here, and makes the frame `invalid`.
 */
export function decodeHandoffFrame(frame: Uint8Array): DecodedHandoff {
  const newline = frame.indexOf(0x0a)
  if (newline < 0) return { body: JSON.parse(decoder.decode(frame)) }
  let envelope: Record<string, unknown>
  try {
    envelope = JSON.parse(decoder.decode(frame.subarray(0, newline)))
  } catch (err) {
    return { body: undefined, invalid: `its envelope is not JSON (${(err as Error).message})` }
  }
  const { events, dataLengths } = envelope ?? {}
  if (envelope?.v !== 2 || !Array.isArray(events) || !Array.isArray(dataLengths) || dataLengths.length !== events.length)
    return { body: undefined, invalid: 'a v2 frame lists its events and one data length for each' }
  const tail = decoder.decode(frame.subarray(newline + 1))
  const dataTexts: string[] = []
  let at = 0
  for (let i = 0; i < events.length; i++) {
    const length = dataLengths[i]
    if (!Number.isSafeInteger(length) || length < 0 || at + length > tail.length)
      return { body: undefined, invalid: `event ${i}'s data length is not within the frame` }
    const text = tail.slice(at, (at += length))
    const event = events[i]
    if (typeof event === 'object' && event !== null && !Array.isArray(event)) {
      try {
        ;(event as Record<string, unknown>).data = JSON.parse(text)
      } catch {
        return { body: undefined, invalid: `event ${i}'s data is not JSON` }
      }
    }
    dataTexts.push(text)
  }
  if (at !== tail.length) return { body: undefined, invalid: 'the frame holds more data than its events' }
  delete envelope.dataLengths
  return { body: envelope, dataTexts }
}
