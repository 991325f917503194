// One payload (a request body, an input file, a message) into events, all or nothing:
// JSON (one object or an array of them) or NDJSON (one object a line). Every door
// parses here, so each event meets the same checks (check-event.ts) and a payload is
// refused for the same reasons wherever it comes in: malformed JSON with line and
// column, no event, too many events, too many bytes, a bad event with its place.
import type { JsonObject } from '../queue/types.js'
import { EventInputError, checkEvent } from './check-event.js'
import { jsonErrorOffset } from './json-error-offset.js'

export type EventFormat = 'json' | 'ndjson'

export interface EventLimits {
  /** Bytes of payload; more is a 413 (doors that read a stream check it while reading). */
  maxBytes?: number
  /** Events in one payload; more is a 413 found before the rest is parsed or checked. */
  maxEvents?: number
  /** Says which setting `maxEvents` is, and why it is final, for the 413's message. */
  maxEventsReason?: string
}

export interface ParsedEvents {
  events: JsonObject[]
  /** An array or NDJSON: ids from an Idempotency-Key get a -0, -1, ... suffix. */
  batch: boolean
}

/** Parse a whole payload into checked events; throws EventInputError saying what and where. */
export function parseEvents(payload: string | Uint8Array, format: EventFormat, limits: EventLimits = {}): ParsedEvents {
  if (limits.maxBytes !== undefined) {
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
    if (bytes > limits.maxBytes)
      throw new EventInputError(`the payload is ${bytes} bytes, more than the ${limits.maxBytes} allowed`, { kind: 'too-large' })
  }
  const text = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')
  if (text.trim() === '')
    throw new EventInputError('the body is empty; send a JSON object, an array of objects or NDJSON lines', { kind: 'empty' })
  const max = limits.maxEvents ?? Infinity
  if (format === 'ndjson') {
    const events: JsonObject[] = []
    const lines = text.split('\n')
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!
      if (line.trim() === '') continue
      if (events.length === max) throw tooMany(`more than ${max}`, limits)
      events.push(checkEvent(parseJson(line, i + 1), { label: `line ${i + 1}`, line: i + 1 }))
    }
    return { events, batch: true }
  }
  // The smallest event with its comma is 3 characters: only a text this long can hold
  // too many, and it is counted before JSON.parse builds hundreds of thousands of objects.
  if (text.length >= 3 * max - 1 && topLevelCommas(text, max) >= max) throw tooMany(`more than ${max}`, limits)
  const value = parseJson(text)
  if (!Array.isArray(value)) return { events: [checkEvent(value, { label: 'the body' })], batch: false }
  if (value.length === 0)
    throw new EventInputError('the body is an empty array; send at least one event', { kind: 'empty', found: 'an empty array' })
  if (value.length > max) throw tooMany(String(value.length), limits)
  return { events: value.map((item, i) => checkEvent(item, { label: `item [${i}]`, item: i })), batch: true }
}

/**
 * Commas between the items of a top-level JSON array, counted in one pass without
 * building anything, stopping at `stop` (0 when the text is not an array). Malformed
 * text may miscount; JSON.parse still judges it when the count is under the limit.
 */
function topLevelCommas(text: string, stop: number): number {
  if (text.trimStart()[0] !== '[') return 0
  let depth = 0
  let commas = 0
  for (let i = 0; i < text.length && commas < stop; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // Skip the string: a backslash escapes the next character.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++
    } else if (c === 0x5b || c === 0x7b) depth++
    else if (c === 0x5d || c === 0x7d) depth--
    else if (c === 0x2c && depth === 1) commas++
  }
  return commas
}

function tooMany(count: string, limits: EventLimits): EventInputError {
  const why = limits.maxEventsReason === undefined ? '' : ` (${limits.maxEventsReason})`
  return new EventInputError(`the body holds ${count} events; at most ${limits.maxEvents} are taken in one request${why}; split it`, {
    kind: 'too-many',
  })
}

function lineAndColumn(text: string, position: number, firstLine: number): { line: number; column: number } {
  let line = firstLine
  let lineStart = 0
  for (let i = 0; i < position && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: position - lineStart + 1 }
}

/** `firstLine` is the payload line the text starts on, so NDJSON errors point into the payload. */
function parseJson(text: string, firstLine = 1): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    const message = (err as Error).message
    const offset = jsonErrorOffset(text)
    const at = offset < 0 ? text.length : offset
    // V8's message may quote the whole payload; keep only its first clause.
    const reason = message.split(/,? "| in JSON/)[0]
    const found = at < text.length ? `unexpected ${JSON.stringify(text.slice(at, at + 1))}` : 'unexpected end of input'
    const { line, column } = lineAndColumn(text, at, firstLine)
    throw new EventInputError(`malformed JSON at line ${line} column ${column}: ${found} (${reason})`, { kind: 'syntax', line })
  }
}
