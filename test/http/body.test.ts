import { describe, expect, it } from 'vitest'
import { bodyFormat } from '../../src/http/body.js'
import { parseEvents } from '../../src/events/parse-events.js'
import { BingeError } from '../../src/errors.js'

function errorOf(fn: () => unknown): BingeError {
  try {
    fn()
  } catch (err) {
    if (err instanceof BingeError) return err
    throw err
  }
  throw new Error('expected a BingeError')
}

describe('bodyFormat', () => {
  it.each([
    ['application/json', 'json'],
    ['application/json; charset=utf-8', 'json'],
    ['application/cloudevents+json', 'json'],
    [undefined, 'json'],
    ['application/x-ndjson', 'ndjson'],
    ['application/jsonl', 'ndjson'],
  ])('%s reads as %s', (type, format) => {
    expect(bodyFormat(type)).toBe(format)
  })

  it('refuses other types with 415', () => {
    expect(errorOf(() => bodyFormat('text/plain')).status).toBe(415)
  })
})

describe('parseEvents', () => {
  it('reads an object, an array and NDJSON', () => {
    expect(parseEvents('{"a":1}', 'json')).toEqual({ events: [{ a: 1 }], texts: ['{"a":1}'], batch: false })
    expect(parseEvents('[{"a":1},{"b":2}]', 'json')).toEqual({ events: [{ a: 1 }, { b: 2 }], texts: ['{"a":1}', '{"b":2}'], batch: true })
    expect(parseEvents('{"a":1}\n\n{"b":2}\r\n', 'ndjson')).toEqual({
      events: [{ a: 1 }, { b: 2 }],
      texts: ['{"a":1}', '{"b":2}'],
      batch: true,
    })
  })

  // The queue stores these texts as the events' data: each must parse to its event.
  it.each([
    ' { "a" : 1 } \n',
    '[{"a":"x,y]}"},{"b":"\\\\"},{"c":"\\"],{"}]',
    '[ {"a":[1,{"b":[]}]} ,\n\t{"c":{"d":"]"}} ]',
    '[{"e":"\\u0022,"},{"f":-1.5e3,"g":null,"h":[true,false]}]',
    `[${Array.from({ length: 50 }, (_, i) => JSON.stringify({ i, s: 'q"\\'.repeat(i), n: { m: [i] } })).join(' , ')}]`,
  ])("keeps each event's own text, exact: %j", (text) => {
    const { events, texts } = parseEvents(text, 'json')
    expect(texts.map((t) => JSON.parse(t))).toEqual(events)
    for (const t of texts) expect(t).toBe(t.trim())
  })

  const deep = `${'{"a":'.repeat(70)}1${'}'.repeat(70)}`
  it.each([
    ['', 'json', /empty/],
    ['   \n', 'ndjson', /empty/],
    ['{"a":', 'json', /malformed JSON at line 1 column 6/],
    ['{"a":1,\n "b": }', 'json', /malformed JSON at line 2 column 7/],
    ['{"a":1}\n{"b":', 'ndjson', /malformed JSON at line 2 column 6/],
    ['42', 'json', /the body is number; an event must be a JSON object/],
    ['"x"', 'json', /the body is string/],
    ['null', 'json', /the body is null/],
    ['[]', 'json', /empty array/],
    ['[{"a":1}, 3]', 'json', /item \[1\] is number/],
    ['[{"a":1}, [1]]', 'json', /item \[1\] is an array/],
    ['{"a":1}\n[1]', 'ndjson', /line 2 is an array/],
    [deep, 'json', /nests deeper than 64 levels/],
    ['{"x":{"__proto__":{"polluted":true}}}', 'json', /the body\.x has the key "__proto__"/],
    ['[{"ok":1},{"constructor":{"prototype":{}}}]', 'json', /item \[1\] has the key "constructor"/],
  ] as const)('%j (%s) is a 400 saying what and where', (text, format, message) => {
    const err = errorOf(() => parseEvents(text, format))
    expect(err.status).toBe(400)
    expect(err.message).toMatch(message)
  })

  it('takes bytes as well as text (an input reads messages as bytes), and meets the same limits', () => {
    expect(parseEvents(new TextEncoder().encode('{"a":1}\n{"b":2}'), 'ndjson').events).toEqual([{ a: 1 }, { b: 2 }])
    const big = errorOf(() => parseEvents(new TextEncoder().encode('{"a":"xxxx"}'), 'json', { maxBytes: 8 }))
    expect([big.status, big.code]).toEqual([413, 'BINGE_PAYLOAD_TOO_LARGE'])
    const many = errorOf(() => parseEvents('{}\n{}\n{}\n', 'ndjson', { maxEvents: 2, maxEventsReason: 'the test' }))
    expect([many.status, many.message]).toEqual([
      413,
      'the body holds more than 2 events; at most 2 are taken in one request (the test); split it',
    ])
    expect(parseEvents('[{},{}]', 'json', { maxEvents: 2 }).events).toHaveLength(2)
    // Items are counted before parsing: commas and brackets inside strings and nested values do not count.
    const tricky = JSON.stringify({ s: 'a,b\\",[{', t: ['x,y', { z: ',,,' }] })
    expect(parseEvents(`[${Array(20).fill(tricky).join(',')}]`, 'json', { maxEvents: 20 }).events).toHaveLength(20)
    expect(errorOf(() => parseEvents(`[${Array(21).fill('{}').join(' , ')}]`, 'json', { maxEvents: 20 })).status).toBe(413)
    expect(errorOf(() => parseEvents('{"n":[1e400]}', 'json')).message).toBe(
      'the body.n[0] is a number too large for a double (it would be stored as null); send it as a string',
    )
  })

  it('counts bytes that are not UTF-8 as they decode (three bytes each), as a peer counts the stored text', () => {
    // 92 bytes of 0xFF inside a string: a 100-byte body whose text is 284 bytes.
    const body = Buffer.concat([Buffer.from('{"s":"'), Buffer.alloc(92, 0xff), Buffer.from('"}')])
    expect(body.byteLength).toBe(100)
    const err = errorOf(() => parseEvents(body, 'json', { maxBytes: 100 }))
    expect([err.status, err.message]).toEqual([413, 'the payload is 284 bytes, more than the 100 allowed'])
    // The same text as text: the same answer.
    expect(errorOf(() => parseEvents(body.toString('utf8'), 'json', { maxBytes: 100 })).message).toBe(err.message)
    // Valid UTF-8 counts its bytes: 'é' is two.
    const accented = Buffer.from('{"s":"éé"}')
    expect(parseEvents(accented, 'json', { maxBytes: accented.byteLength }).texts).toEqual(['{"s":"éé"}'])
    expect(errorOf(() => parseEvents(accented, 'json', { maxBytes: accented.byteLength - 1 })).status).toBe(413)
  })

  // A payload past 32 KB is decoded and parsed a few lines or items at a time
  // (parse-events.ts): the events, texts and errors must be what one text would give.
  describe('a large payload, in pieces', () => {
    const chars = ['a', 'é', '€', '😀', '"', '\\', ',', ']', '}', '\n']
    const item = (i: number) => ({
      i,
      s: chars[i % chars.length]!.repeat(i % 7 === 0 ? 40_000 + i : 30 + (i % 300)),
      nest: [{ k: '[{,"' }, [i, null, true, -1.5e3]],
    })
    const items = Array.from({ length: 600 }, (_, i) => item(i))
    const spaces = (i: number) => [' ', '\n', '\t\r\n ', ''][i % 4]!

    it('an array of 2 MB: the same events, and each text as it came', () => {
      // Items with spaces and line breaks inside: a text serialized again would differ.
      const texts = items.map((e, i) => JSON.stringify(e, null, i % 3))
      const body = Buffer.from(`${spaces(1)}[${texts.map((t, i) => `${spaces(i)}${t}${spaces(i + 1)}`).join(',')}]\n`)
      expect(body.length).toBeGreaterThan(2_000_000)
      expect(parseEvents(body, 'json', { maxEvents: items.length })).toEqual({ events: items, texts, batch: true })
      expect(errorOf(() => parseEvents(body, 'json', { maxEvents: items.length - 1 })).message).toMatch(/holds more than 599 events/)
    })

    it('NDJSON of 2 MB, and bytes that are not UTF-8: the same as one text', () => {
      const lines = items.map((e, i) => `${spaces(i)}${JSON.stringify(e)}`)
      // Bytes that are not UTF-8 inside a string of every 50th line.
      const bad = (line: string) => [Buffer.from('{"bad":"'), Buffer.from([0xff, 0xc3]), Buffer.from(`",${line.trimStart().slice(1)}`)]
      const body = Buffer.concat(lines.flatMap((line, i) => [...(i % 50 === 3 ? bad(line) : [Buffer.from(line)]), Buffer.from('\r\n')]))
      expect(body.length).toBeGreaterThan(2_000_000)
      const whole = body.toString('utf8')
      const parsed = parseEvents(body, 'ndjson')
      expect(parsed.events).toEqual(
        whole
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l)),
      )
      expect(parsed.texts).toEqual(
        whole
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== ''),
      )
      const array = Buffer.concat([Buffer.from('['), ...lines.flatMap((line, i) => [Buffer.from(i ? ',' : ''), Buffer.from(line)])])
      const withBad = Buffer.concat([array.subarray(0, 1000), Buffer.from([0xe2, 0x82]), array.subarray(1000), Buffer.from(']')])
      expect(parseEvents(withBad, 'json').events).toEqual(JSON.parse(withBad.toString('utf8')))
    })

    it.each([
      ['a missing comma', (t: string[]) => `[${t.slice(0, 400).join(',')} ${t.slice(400).join(',')}]`, /malformed JSON at line 1 column/],
      ['two commas', (t: string[]) => `[${t.slice(0, 400).join(',')},,${t.slice(400).join(',')}]`, /malformed JSON at line 1 column/],
      ['a trailing comma', (t: string[]) => `[${t.join(',')},]`, /malformed JSON at line 1 column/],
      ['no closing bracket', (t: string[]) => `[${t.join(',')}`, /malformed JSON at line 1 column/],
      ['text after the array', (t: string[]) => `[${t.join(',')}] x`, /malformed JSON at line 1 column/],
      ['a second array', (t: string[]) => `[${t.join(',')}]\n[{}]`, /malformed JSON at line 2 column 1/],
      ['a broken item', (t: string[]) => `[${t.slice(0, 500).join(',\n')},\n{"a":tru}]`, /malformed JSON at line 501 column 6/],
      ['an item that is no event', (t: string[]) => `[${t.join(',')},[1]]`, /item \[600\] is an array/],
      ['a later item broken, an earlier one no event', (t: string[]) => `[3,${t.join(',')},{]`, /malformed JSON/],
    ] as const)('an array of 2 MB with %s: the error one text gives', (_, make, message) => {
      const text = make(items.map((e) => JSON.stringify(e)))
      const err = errorOf(() => parseEvents(Buffer.from(text), 'json'))
      expect([err.status, err.message]).toEqual([400, expect.stringMatching(message)])
      // The same text given as a string: the same answer.
      expect(errorOf(() => parseEvents(text, 'json')).message).toBe(err.message)
    })

    // Found by a differential fuzz against the parser of one text.
    it.each([
      ['[{"a":1},{"b":2}}', {}, 400, 'malformed JSON at line 1 column 17'],
      ['[1}', {}, 400, 'malformed JSON at line 1 column 3'],
      ['[{},{},]', { maxEvents: 2 }, 400, 'malformed JSON at line 1 column 8'],
      ['[,]', { maxEvents: 1 }, 400, 'malformed JSON at line 1 column 2'],
    ] as const)('%j (limits %j) is refused as one text refuses it', (text, limits, status, message) => {
      for (const payload of [text, Buffer.from(text)]) {
        const err = errorOf(() => parseEvents(payload, 'json', limits))
        expect([err.status, err.message]).toEqual([status, expect.stringContaining(message)])
      }
    })

    it('NDJSON of 2 MB with a broken line: its line number', () => {
      const text = `${items.map((e) => JSON.stringify(e)).join('\n')}\n{"a":}\n{}`
      expect(errorOf(() => parseEvents(Buffer.from(text), 'ndjson')).message).toMatch(/malformed JSON at line 601 column 6/)
    })
  })

  it('accepts exactly 64 levels', () => {
    const ok = `${'{"a":'.repeat(63)}1${'}'.repeat(63)}`
    expect(parseEvents(ok, 'json').events).toHaveLength(1)
  })
})

describe('jsonErrorOffset', async () => {
  const { jsonErrorOffset } = await import('../../src/events/json-error-offset.js')
  it.each([
    ['{"a":1}', -1],
    ['[1, {"b": [true, null, "x\\"y"]}, -2.5e3]', -1],
    ['  {}  ', -1],
    ['{"a":1,\n "b": }', 14],
    ['[1,]', 3],
    ['{a}', 1],
    ['{"a" 1}', 5],
    ['{"a":1}}', 7],
    ['[1 2]', 3],
    ['"abc', 0],
    ['', 0],
    ['['.repeat(100000), 100000],
  ])('%j -> %d', (text, offset) => {
    expect(jsonErrorOffset(text)).toBe(offset)
  })
})
