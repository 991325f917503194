// The newest events kept in memory for dequeue: it answers only for what it knows
// entirely, and says "read LevelDB" otherwise.
import { describe, expect, it } from 'vitest'
import { unprocessedKey } from '../../src/queue/durable/keys.js'
import { RecentEvents } from '../../src/queue/durable/recent-events.js'
import { seqString } from '../../src/queue/queue-key.js'

const key = (seq: number) => unprocessedKey(seqString(seq))
const free = () => false

describe('RecentEvents', () => {
  it('serves a cursor within what it was told, passing held and deleted events by', () => {
    const recent = new RecentEvents(1 << 20)
    recent.reset(10)
    recent.added(10, ['a', 'b', 'c'])
    // A failed group skipped 13 and 14; then 15 and 16 became visible.
    recent.added(15, ['d', 'e'])
    recent.deleted([11])
    const held = (queueKey: string) => queueKey === seqString(12)
    expect(recent.read(key(10), 17, 10, held)).toEqual({
      entries: [
        [key(10), 'a'],
        [key(15), 'd'],
        [key(16), 'e'],
      ],
      last: key(16),
    })
    // After 10 (the cursor a dequeue leaves), at most two.
    expect(recent.read(`${key(10)}\u0000`, 17, 2, free)).toEqual({
      entries: [
        [key(12), 'c'],
        [key(15), 'd'],
      ],
      last: key(15),
    })
  })

  it('sends a cursor below what it knows, or a visible end past it, to LevelDB', () => {
    const recent = new RecentEvents(1 << 20)
    recent.reset(10)
    recent.added(10, ['a'])
    expect(recent.read('u!', 11, 10, free)).toBeUndefined()
    expect(recent.read(key(9), 11, 10, free)).toBeUndefined()
    expect(recent.read(key(10), 12, 10, free)).toBeUndefined()
    expect(recent.read(key(10), 11, 10, free)?.entries).toEqual([[key(10), 'a']])
  })

  it('drops the oldest past its size, and then no longer answers for them', () => {
    const recent = new RecentEvents(10)
    recent.reset(0)
    recent.added(0, ['aaaa', 'bbbb', 'cccc'])
    // 12 characters > 10: the oldest go until half is left.
    expect(recent.read(key(0), 3, 10, free)).toBeUndefined()
    expect(recent.read(key(2), 3, 10, free)?.entries).toEqual([[key(2), 'cccc']])
  })
})
