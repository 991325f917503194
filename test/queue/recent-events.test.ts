// The newest events kept in memory for dequeue: it answers only for what it knows
// entirely, and says "read LevelDB" otherwise; an exact record is handed out once.
import { describe, expect, it } from 'vitest'
import { unprocessedKey } from '../../src/queue/durable/keys.js'
import { RecentEvents } from '../../src/queue/durable/recent-events.js'
import { seqString } from '../../src/queue/queue-key.js'

const key = (seq: number) => unprocessedKey(seqString(seq))
const free = () => false
const w = (...jsons: string[]) => jsons.map((json) => ({ json, bytes: json.length }))
/** What a read found, as [db key, JSON] pairs. */
const pairs = (found: { entries: Array<[string, string, unknown]> } | undefined) => found?.entries.map(([k, json]) => [k, json])

describe('RecentEvents', () => {
  it('serves a cursor within what it was told, passing held and deleted events by', () => {
    const recent = new RecentEvents(1 << 20)
    recent.reset(10)
    recent.added(10, w('a', 'b', 'c'))
    // A failed group skipped 13 and 14; then 15 and 16 became visible.
    recent.added(15, w('d', 'e'))
    recent.deleted([11])
    const held = (queueKey: string) => queueKey === seqString(12)
    const found = recent.read(key(10), 17, 10, held)
    expect(pairs(found)).toEqual([
      [key(10), 'a'],
      [key(15), 'd'],
      [key(16), 'e'],
    ])
    expect(found?.last).toBe(key(16))
    // After 10 (the cursor a dequeue leaves), at most two.
    const after = recent.read(`${key(10)}\u0000`, 17, 2, free)
    expect(pairs(after)).toEqual([
      [key(12), 'c'],
      [key(15), 'd'],
    ])
    expect(after?.last).toBe(key(15))
  })

  it('sends a cursor below what it knows, or a visible end past it, to LevelDB', () => {
    const recent = new RecentEvents(1 << 20)
    recent.reset(10)
    recent.added(10, w('a'))
    expect(recent.read('u!', 11, 10, free)).toBeUndefined()
    expect(recent.read(key(9), 11, 10, free)).toBeUndefined()
    expect(recent.read(key(10), 12, 10, free)).toBeUndefined()
    expect(pairs(recent.read(key(10), 11, 10, free))).toEqual([[key(10), 'a']])
  })

  it('drops the oldest past its size, and then no longer answers for them', () => {
    const recent = new RecentEvents(10)
    recent.reset(0)
    recent.added(0, w('aaaa', 'bbbb', 'cccc'))
    // 12 characters > 10: the oldest go until half is left.
    expect(recent.read(key(0), 3, 10, free)).toBeUndefined()
    expect(pairs(recent.read(key(2), 3, 10, free))).toEqual([[key(2), 'cccc']])
  })

  it('hands an exact record out once, and keeps records only for its record budget', () => {
    const record = (id: string) => ({ id, origin: 'n', receivedAt: 1, hops: 0, data: { id } })
    const written = (id: string, exact = true) => ({ json: `{"id":"${id}"}`, bytes: 10, record: record(id), exact })
    // Room for the records of two events of 10 characters.
    const recent = new RecentEvents(1 << 20, 20)
    recent.reset(0)
    recent.added(0, [written('a'), written('b', false), written('c'), written('d')])
    const kept = recent.read(key(0), 4, 10, free)!.entries.map(([, , k]) => k)
    // b is not exact; d came past the budget: both are parsed from their JSON.
    expect(kept.map((k) => k.record?.id)).toEqual(['a', undefined, 'c', undefined])
    expect(kept.map((k) => k.bytes)).toEqual([10, 10, 10, 10])
    expect(recent.handOut(kept[0]!, 'k0')).toEqual({ ...record('a'), key: 'k0' })
    // Once: a second dequeue (after a nack) parses the stored text.
    expect(recent.handOut(kept[0]!, 'k0')).toBeUndefined()
    expect(recent.handOut(kept[1]!, 'k1')).toBeUndefined()
    // a's record handed out and c's deleted free the budget: the next ones keep theirs.
    recent.deleted([2])
    recent.added(4, [written('e'), written('f'), written('g')])
    const next = recent.read(key(4), 7, 10, free)!.entries.map(([, , k]) => k.record?.id)
    expect(next).toEqual(['e', 'f', undefined])
  })
})
