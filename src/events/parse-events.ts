// One payload (a request body, an input file, a message) into events, all or nothing:
// JSON (one object or an array of them) or NDJSON (one object a line). Every door
// parses here, so each event meets the same checks (check-event.ts) and a payload is
// refused for the same reasons wherever it comes in: malformed JSON with line and
// column, no event, too many events, too many bytes, a bad event with its place.
import { isUtf8 } from 'node:buffer'
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
  /**
   * Each event's own JSON text as it came, without the whitespace around it: JSON.parse
   * of texts[i] gives events[i]. The queue stores it as is rather than serializing the
   * event again (EnqueueOptions.dataTexts).
   */
  texts: string[]
  /** An array or NDJSON: ids from an Idempotency-Key get a -0, -1, ... suffix. */
  batch: boolean
}

/** Parse a whole payload into checked events; throws EventInputError saying what and where. */
export function parseEvents(payload: string | Uint8Array, format: EventFormat, limits: EventLimits = {}): ParsedEvents {
  const maxBytes = limits.maxBytes
  // Bytes decode to at least as many: past the limit, refused before decoding.
  if (maxBytes !== undefined && typeof payload !== 'string' && payload.byteLength > maxBytes) throw tooLarge(payload.byteLength, maxBytes)
  const text = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')
  if (maxBytes !== undefined) {
    // The size of the text as stored: bytes that are not UTF-8 decode to U+FFFD, three
    // bytes each, so such a payload counts as decoded (as a peer counts it).
    const bytes = typeof payload === 'string' || !isUtf8(payload) ? Buffer.byteLength(text) : payload.byteLength
    if (bytes > maxBytes) throw tooLarge(bytes, maxBytes)
  }
  if (text.trim() === '')
    throw new EventInputError('the body is empty; send a JSON object, an array of objects or NDJSON lines', { kind: 'empty' })
  const max = limits.maxEvents ?? Infinity
  if (format === 'ndjson') {
    const events: JsonObject[] = []
    const texts: string[] = []
    const lines = text.split('\n')
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!
      const trimmed = line.trim()
      if (trimmed === '') continue
      if (events.length === max) throw tooMany(`more than ${max}`, limits)
      events.push(checkEvent(parseJson(line, i + 1), { label: `line ${i + 1}`, line: i + 1 }))
      texts.push(trimmed)
    }
    return { events, texts, batch: true }
  }
  const trimmed = text.trim()
  // Split before JSON.parse builds anything, so too many events are refused unbuilt.
  const items = trimmed[0] === '[' ? arrayItems(trimmed, max) : undefined
  if (items && items.length > max) throw tooMany(`more than ${max}`, limits)
  const value = parseJson(text)
  if (!Array.isArray(value)) return { events: [checkEvent(value, { label: 'the body' })], texts: [trimmed], batch: false }
  if (value.length === 0)
    throw new EventInputError('the body is an empty array; send at least one event', { kind: 'empty', found: 'an empty array' })
  if (value.length > max) throw tooMany(String(value.length), limits)
  const events = value.map((item, i) => checkEvent(item, { label: `item [${i}]`, item: i }))
  // The text parsed, so it is JSON and the split is exact; the guard costs nothing.
  const texts = items?.length === events.length ? items.map(([from, to]) => trimmed.slice(from, to)) : events.map((e) => JSON.stringify(e))
  return { events, texts, batch: true }
}

const isJsonSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/**
 * Where each item of the top-level JSON array `text` (trimmed, starting with "[") begins
 * and ends, found in one pass without building anything; it stops after `stop + 1`
 * items (the caller refuses that many). Strings are skipped with indexOf, so a large
 * event costs little more than its structure. Malformed text may split wrongly; its
 * caller trusts the split only once JSON.parse has accepted the same text.
 */
function arrayItems(text: string, stop: number): Array<[number, number]> {
  const items: Array<[number, number]> = []
  let depth = 0
  let start = -1
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      if (start < 0) start = i
      i = closingQuote(text, i)
      if (i < 0) break
    } else if (c === 0x5b || c === 0x7b) {
      if (depth === 1 && start < 0) start = i
      depth++
    } else if (c === 0x2c && depth === 1) {
      items.push([start, trimEnd(text, i)])
      if (items.length > stop) return items
      start = -1
    } else if (c === 0x5d || c === 0x7d) {
      depth--
      if (depth === 0) {
        if (start >= 0) items.push([start, trimEnd(text, i)])
        break
      }
    } else if (depth === 1 && start < 0 && !isJsonSpace(c)) start = i
  }
  return items
}

/** The index of the quote closing the string opened at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  let at = text.indexOf('"', open + 1)
  while (at > 0) {
    let slashes = 0
    while (text.charCodeAt(at - 1 - slashes) === 0x5c) slashes++
    if (slashes % 2 === 0) return at
    at = text.indexOf('"', at + 1)
  }
  return -1
}

/** The end of an item that runs up to `to`, without the whitespace before it. */
function trimEnd(text: string, to: number): number {
  while (to > 0 && isJsonSpace(text.charCodeAt(to - 1))) to--
  return to
}

function tooLarge(bytes: number, max: number): EventInputError {
  return new EventInputError(`the payload is ${bytes} bytes, more than the ${max} allowed`, { kind: 'too-large' })
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
