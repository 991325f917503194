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
