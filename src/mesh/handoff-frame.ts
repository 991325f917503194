// The bytes of a handoff request (v2). One line of JSON, the envelope, with each event's
// fields but its data, then a newline and the events' data as JSON texts, one after
// another, their lengths (UTF-16 code units) listed in the envelope:
//
//   {"v":2,"handoffId":…,"kind":…,"from":…,"events":[{"id":…,…},…],"dataLengths":[…]}\n{…data 0…}{…data 1…}…
//
// Why: the sender has each event as the JSON text it stored, data last (admission.ts
// writes it so), and sends that text's head and data parts as they are, with no
// JSON.stringify of the batch; the receiver gets each event's data as a text of its own,
// so it knows its size without serializing it again, and can store the text as received.
// A newline never occurs in JSON.stringify's output, so the first one ends the envelope.
// A frame without one is a v1 request (the whole frame one JSON object, events with
// their data).
import { recordHeadJson } from '../queue/admission.js'
import type { EventRecord } from '../queue/types.js'
import { decodePieces, pushUtf8Pieces } from '../util/text-pieces.js'

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

/** An event's head (its fields but data, a JSON object) and its data, as JSON texts. */
export interface EventParts {
  head: string
  data: string
}

/**
 * The head and data parts of `stored`, the event's stored JSON, which parsed is `record`,
 * when it is laid out as the store writes it (admission.ts: the head's fields, then
 * `"data"` last); undefined when it is not (written by an older version, say), and the
 * frame serializes the event again.
 * Without meta, the first `,"data":` in the text is the record's own data key: a `"`
 * inside a JSON string is escaped, the head's other values are strings, numbers and
 * true, and every layout ever stored begins with the id (checked, not assumed).
 * Data is then last unless an older layout wrote pipeline or keyed after it (a replayed
 * dead letter did): each is looked for before it. So the head is a
 * slice, checked by two searches instead of built again (measured: building every
 * head was a sixth of a sender's frame and take). With meta (whose keys may be "data")
 * the head is built and compared.
 */
export function storedParts(stored: string | undefined, record: EventRecord): EventParts | undefined {
  if (stored === undefined || stored.charCodeAt(stored.length - 1) !== 0x7d) return undefined
  if (record.meta !== undefined) {
    const head = recordHeadJson(record)
    const open = head.length - 1
    if (stored.length < open + dataKey.length + 2 || !stored.startsWith(dataKey, open) || !stored.startsWith(head.slice(0, open)))
      return undefined
    return { head, data: stored.slice(open + dataKey.length, -1) }
  }
  const at = stored.indexOf(dataKey)
  if (at < 0 || stored.length < at + dataKey.length + 2 || !stored.startsWith('{"id":')) return undefined
  if (record.pipeline !== undefined && stored.lastIndexOf(',"pipeline":', at) < 0) return undefined
  if (record.keyed === true && stored.lastIndexOf(',"keyed":', at) < 0) return undefined
  return { head: `${stored.slice(0, at)}}`, data: stored.slice(at + dataKey.length, -1) }
}

/** The v2 frame of a batch; `texts[i]`, if given, is event i's stored JSON, whose parts are sent as they are. */
export function encodeHandoffFrame(envelope: HandoffEnvelope, events: EventRecord[], texts?: ReadonlyArray<string | undefined>): Buffer {
  const heads: string[] = []
  const datas: string[] = []
  const lengths: number[] = []
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!
    const parts = storedParts(texts?.[i], e) ?? { head: recordHeadJson(e), data: JSON.stringify(e.data) }
    heads.push(parts.head)
    datas.push(parts.data)
    lengths.push(parts.data.length)
  }
  const { handoffId, kind, from } = envelope
  const open = JSON.stringify({ v: 2, handoffId, kind, from }).slice(0, -1)
  const bytes = [Buffer.from(`${open},"events":[`)]
  pushUtf8Pieces(bytes, heads, ',')
  bytes.push(Buffer.from(`],"dataLengths":[${lengths.join(',')}]}\n`))
  pushUtf8Pieces(bytes, datas, '')
  return Buffer.concat(bytes)
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
  // The data, decoded a piece at a time (text-pieces.ts); a text may span two pieces or more.
  const pieces = decodePieces(frame.subarray(newline + 1))
  let piece = 0
  let at = 0
  const dataTexts: string[] = []
  for (let i = 0; i < events.length; i++) {
    let length = dataLengths[i]
    if (!Number.isSafeInteger(length) || length < 0) return { body: undefined, invalid: `event ${i}'s data length is not within the frame` }
    let text = ''
    while (length > 0) {
      const from = pieces[piece]
      if (from === undefined) return { body: undefined, invalid: `event ${i}'s data length is not within the frame` }
      const end = Math.min(from.length, at + length)
      text += from.slice(at, end)
      length -= end - at
      at = end
      if (at === from.length) {
        piece++
        at = 0
      }
    }
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
  if (piece < pieces.length) return { body: undefined, invalid: 'the frame holds more data than its events' }
  delete envelope.dataLengths
  return { body: envelope, dataTexts }
}
