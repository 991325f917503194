// The shape of a handoff request's events, checked by hand (handoffEvent in
// src/mesh/handoff-protocol.ts): the fields of an EventRecord and no others, within the
// limits the protocol table gives; data the object as parsed, meta a copy.
import { describe, expect, it } from 'vitest'
import { handoffEvent, parseHandoffRequest } from '../../src/mesh/handoff-protocol.js'

const good = { id: 'e1', origin: 'a', receivedAt: 5, hops: 0, data: { x: 1 } }

describe('the shape of a handoff event', () => {
  it('takes an EventRecord, data as parsed and meta as a copy without __proto__', () => {
    const data = JSON.parse('{"__proto__":{"polluted":true}}')
    const meta = JSON.parse('{"k":"v","__proto__":"x"}')
    const event = handoffEvent({ ...good, pipeline: 'p', meta, data }, 0)
    expect(event).toEqual({ ...good, pipeline: 'p', meta: { k: 'v' }, data })
    expect(typeof event !== 'string' && event.data).toBe(data)
    expect(Object.getPrototypeOf(typeof event !== 'string' && event.meta)).toBe(Object.prototype)
  })

  it('refuses what the protocol table does not allow', () => {
    const bad: Array<[unknown, RegExp]> = [
      [[good], /event 3 is not an object/],
      [{ ...good, extra: 1 }, /unknown field "extra"/],
      [JSON.parse('{"id":"e","origin":"a","receivedAt":1,"hops":0,"data":{},"__proto__":{}}'), /unknown field "__proto__"/],
      [{ ...good, id: '' }, /id must be a string/],
      [{ ...good, id: 'x'.repeat(1001) }, /id must be a string/],
      // A NUL marks a batch's dedupe entry (batchDedupeId); no id binge makes or takes holds a control character.
      [{ ...good, id: 'peer\u0000h1' }, /id must be a string of 1 to 1000 printable characters/],
      [{ ...good, id: 'line\nbreak' }, /printable/],
      [{ ...good, pipeline: 3 }, /pipeline must be a string/],
      [{ ...good, origin: undefined }, /origin must be a string/],
      [{ ...good, receivedAt: -1 }, /receivedAt must be a whole number/],
      [{ ...good, receivedAt: 2 ** 60 }, /receivedAt must be a whole number/],
      [{ ...good, hops: 1.5 }, /hops must be a whole number/],
      [{ ...good, hops: 1001 }, /hops must be a whole number/],
      [{ ...good, data: [1] }, /data must be a JSON object/],
      [{ ...good, data: null }, /data must be a JSON object/],
      [{ ...good, meta: [] }, /meta must be an object of strings/],
      [{ ...good, meta: { k: 1 } }, /meta holds keys/],
      [{ ...good, meta: { ['k'.repeat(65)]: 'v' } }, /meta holds keys/],
      [{ ...good, meta: { k: 'v'.repeat(4097) } }, /meta holds keys/],
    ]
    for (const [event, reason] of bad) expect(handoffEvent(event, 3), JSON.stringify(event)?.slice(0, 80)).toMatch(reason)
  })

  it('checks the envelope by schema and every event', () => {
    const body = { v: 2, handoffId: 'h', kind: 'overflow', from: 'a', events: [good, { ...good, id: 'e2' }] }
    expect(parseHandoffRequest(body)).toEqual(body)
    expect(parseHandoffRequest({ ...body, events: [] })).toMatch(/>=1|at least|too small/i)
    expect(parseHandoffRequest({ ...body, v: 3 })).toEqual(expect.any(String))
    expect(parseHandoffRequest({ ...body, extra: 1 })).toEqual(expect.any(String))
    expect(parseHandoffRequest({ ...body, events: [good, { ...good, hops: -1 }] })).toMatch(/event 1: hops/)
  })
})
