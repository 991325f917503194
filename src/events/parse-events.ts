// One payload (a request body, an input file, a message) into events, all or nothing:
// JSON (one object or an array of them) or NDJSON (one object a line). Every door
// parses here, so each event meets the same checks (check-event.ts) and a payload is
// refused for the same reasons wherever it comes in: malformed JSON with line and
// column, no event, too many events, too many bytes, a bad event with its place.
import { isAscii, isUtf8 } from 'node:buffer'
import type { JsonObject } from '../queue/types.js'
import { EventInputError, checkEvent } from './check-event.js'
import { jsonErrorOffset } from './json-error-offset.js'
import { pieceBytes } from '../util/text-pieces.js'

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

/**
 * Parse a whole payload into checked events; throws EventInputError saying what and where.
 * A JSON array or NDJSON is decoded and parsed a few items or lines at a time, never as
 * one string (text-pieces.ts): a 512-event body of 1 KB events parsed in 4.5 µs an event
 * as one text, in 1.1 in pieces.
 */
export function parseEvents(payload: string | Uint8Array, format: EventFormat, limits: EventLimits = {}): ParsedEvents {
  const maxBytes = limits.maxBytes
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  if (maxBytes !== undefined) {
    // Bytes decode to at least as many: past the limit, refused before decoding. Else the
    // size of the text as stored: bytes that are not UTF-8 decode to U+FFFD, three bytes
    // each, so such a payload counts as decoded (as a peer counts it).
    if (bytes.length > maxBytes) throw tooLarge(bytes.length, maxBytes)
    const size = isUtf8(bytes) ? bytes.length : Buffer.byteLength(bytes.toString('utf8'))
    if (size > maxBytes) throw tooLarge(size, maxBytes)
  }
  const max = limits.maxEvents ?? Infinity
  if (format === 'ndjson') return ndjsonEvents(bytes, max, limits)
  let open = 0
  while (open < bytes.length && isJsonSpace(bytes[open]!)) open++
  if (bytes[open] === 0x5b) {
    const parsed = arrayEvents(bytes, open, max, limits)
    if (parsed !== undefined) return parsed
  }
  // One object, or a payload that is not a JSON array of events: parsed whole, which
  // finds what is wrong and where.
  const text = bytes.toString('utf8')
  if (text.trim() === '') throw empty()
  const value = parseJson(text)
  if (!Array.isArray(value)) return { events: [checkEvent(value, { label: 'the body' })], texts: [text.trim()], batch: false }
  if (value.length === 0)
    throw new EventInputError('the body is an empty array; send at least one event', { kind: 'empty', found: 'an empty array' })
  // arrayEvents takes every array that parses and holds an event; were one to come here,
  // it would still be taken, each event serialized again.
  if (value.length > max) throw tooMany(String(value.length), limits)
  const events = value.map((item, i) => checkEvent(item, { label: `item [${i}]`, item: i }))
  return { events, texts: events.map((e) => JSON.stringify(e)), batch: true }
}

/**
 * NDJSON, decoded a few whole lines at a time: a piece ends at a byte \n, which no other
 * UTF-8 character holds, so it decodes as it would within the whole text.
 */
function ndjsonEvents(bytes: Buffer, max: number, limits: EventLimits): ParsedEvents {
  const parsed: ParsedEvents = { events: [], texts: [], batch: true }
  let line = 0
  for (let from = 0; from <= bytes.length; ) {
    let to = from + pieceBytes >= bytes.length ? bytes.length : bytes.lastIndexOf(0x0a, from + pieceBytes)
    if (to < from) to = bytes.indexOf(0x0a, from + pieceBytes)
    if (to < 0) to = bytes.length
    for (const text of bytes.toString('utf8', from, to).split('\n')) {
      line++
      const trimmed = text.trim()
      if (trimmed === '') continue
      if (parsed.events.length === max) throw tooMany(`more than ${max}`, limits)
      parsed.events.push(checkEvent(parseJson(text, line), { label: `line ${line}`, line }))
      parsed.texts.push(trimmed)
    }
    from = to + 1
  }
  if (parsed.events.length === 0) throw empty()
  return parsed
}

/**
 * A JSON array whose `[` is at `open`: its items found by arrayItems, decoded a few
 * whole items at a time, each parsed alone, then checked in order. Undefined when it is
 * not 1 to `max` items that each parse, with only JSON whitespace and one comma between
 * them and after the `]`: parseEvents then parses the whole text, which says what is
 * wrong and where. A text so laid out is JSON exactly when each item is, and parses to
 * the array of what they parse to.
 */
function arrayEvents(bytes: Buffer, open: number, max: number, limits: EventLimits): ParsedEvents | undefined {
  // Split before JSON.parse builds anything, so too many events are refused unbuilt.
  const { items, close } = arrayItems(bytes, open, max)
  if (items.length > max) throw tooMany(`more than ${max}`, limits)
  if (items.length === 0 || close < 0 || items.some(([from]) => from < 0)) return undefined
  for (let i = close + 1; i < bytes.length; i++) if (!isJsonSpace(bytes[i]!)) return undefined
  const values: unknown[] = []
  const texts: string[] = []
  for (let first = 0; first < items.length; ) {
    const from = items[first]![0]
    let last = first
    while (last + 1 < items.length && items[last + 1]![1] - from <= pieceBytes) last++
    const to = items[last]![1]
    // Offsets are bytes, and characters too only where all is ASCII: else each item is
    // decoded alone.
    const piece = isAscii(bytes.subarray(from, to)) ? bytes.toString('utf8', from, to) : undefined
    for (let i = first; i <= last; i++) {
      const [start, end] = items[i]!
      const text = piece !== undefined ? piece.slice(start - from, end - from) : bytes.toString('utf8', start, end)
      try {
        values.push(JSON.parse(text))
      } catch {
        return undefined
      }
      texts.push(text)
    }
    first = last + 1
  }
  const events = values.map((item, i) => checkEvent(item, { label: `item [${i}]`, item: i }))
  return { events, texts, batch: true }
}

const isJsonSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/**
 * Where each item of the JSON array whose `[` is at `open` begins and ends (without the
 * whitespace around it; begins at -1 if it is empty), and where its `]` is (-1: not
 * found, or not a `]` after an item), in one pass over the bytes without decoding or
 * building anything; it stops after `stop + 1` items (the caller refuses that many).
 * Every structural character is ASCII, and every byte of a character past ASCII is 0x80
 * or more, so bytes split as characters would. Strings are skipped by searching for
 * their closing quote, so a large event costs little more than its structure. Malformed
 * text may split wrongly; its caller trusts the split only once each item has parsed.
 */
function arrayItems(bytes: Buffer, open: number, stop: number): { items: Array<[number, number]>; close: number } {
  const items: Array<[number, number]> = []
  let depth = 0
  let start = -1
  for (let i = open; i < bytes.length; i++) {
    const c = bytes[i]!
    if (c === 0x22) {
      if (start < 0) start = i
      i = closingQuote(bytes, i)
      if (i < 0) break
    } else if (c === 0x5b || c === 0x7b) {
      if (depth === 1 && start < 0) start = i
      depth++
    } else if (c === 0x2c && depth === 1) {
      items.push([start, trimEnd(bytes, i)])
      if (items.length > stop) break
      start = -1
    } else if (c === 0x5d || c === 0x7d) {
      depth--
      if (depth === 0) {
        if (start >= 0) items.push([start, trimEnd(bytes, i)])
        // A closing brace, or a comma before the bracket: not an array, and not an item.
        return { items, close: c === 0x5d && (start >= 0 || items.length === 0) ? i : -1 }
      }
    } else if (depth === 1 && start < 0 && !isJsonSpace(c)) start = i
  }
  return { items, close: -1 }
}

/** The index of the quote closing the string opened at `open`, or -1. */
function closingQuote(bytes: Buffer, open: number): number {
  let at = quoteFrom(bytes, open + 1)
  while (at > 0) {
    let slashes = 0
    while (bytes[at - 1 - slashes] === 0x5c) slashes++
    if (slashes % 2 === 0) return at
    at = quoteFrom(bytes, at + 1)
  }
  return -1
}

/** The first `"` at or after `from`, or -1: a short string is looked through here, a long one by indexOf (a call into C++ costs as much as reading some 60 bytes here). */
function quoteFrom(bytes: Buffer, from: number): number {
  const near = Math.min(bytes.length, from + 64)
  for (let i = from; i < near; i++) if (bytes[i] === 0x22) return i
  return near < bytes.length ? bytes.indexOf(0x22, near) : -1
}

/** The end of an item that runs up to `to`, without the whitespace before it. */
function trimEnd(bytes: Buffer, to: number): number {
  while (to > 0 && isJsonSpace(bytes[to - 1]!)) to--
  return to
}

function empty(): EventInputError {
  return new EventInputError('the body is empty; send a JSON object, an array of objects or NDJSON lines', { kind: 'empty' })
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
