// PeerHealth on a fake clock: a peer is judged by its own answers. An unknown outcome
// makes it suspect until its next answer, a handoff unanswered past the stall time too;
// a peer that never answered gets one batch at a time. And splitByBytes, which cuts a
// direct handoff into frames.
import { describe, expect, it } from 'vitest'
import { splitByBytes } from '../../src/mesh/handoff-split.js'
import { PeerHealth } from '../../src/mesh/peer-health.js'
import type { EventRecord } from '../../src/queue/types.js'

function clock() {
  let now = 1_000
  return { now: () => now, advance: (ms: number) => void (now += ms) }
}

const never = () => false

describe('PeerHealth', () => {
  it('an unknown peer is healthy and ready; one send under way makes a never-answered peer not ready', async () => {
    const c = clock()
    const h = new PeerHealth(1_000, c.now)
    expect(h.healthy('p')).toBe(true)
    expect(h.ready('p')).toBe(true)
    let answer!: (v: string) => void
    const sent = h.track('p', () => new Promise<string>((resolve) => (answer = resolve)), never)
    expect(h.healthy('p')).toBe(true)
    expect(h.ready('p')).toBe(false)
    answer('accepted')
    await expect(sent).resolves.toBe('accepted')
    // It answered: it may have several batches at once from now on.
    expect(h.ready('p')).toBe(true)
    void h.track('p', () => new Promise<string>(() => {}), never)
    expect(h.ready('p')).toBe(true)
    // Unanswered past the stall time: suspect, though no timeout has fired yet.
    c.advance(1_001)
    expect(h.healthy('p')).toBe(false)
    expect(h.ready('p')).toBe(false)
  })

  it('an unknown outcome makes a peer suspect until it answers a handoff; a ping only says it is there', async () => {
    const c = clock()
    const h = new PeerHealth(1_000, c.now)
    await h.track('p', async () => 'accepted', never)
    c.advance(10)
    await expect(
      h.track(
        'p',
        async () => {
          throw new Error('timeout')
        },
        never,
      ),
    ).rejects.toThrow('timeout')
    const failedAt = c.now()
    expect(h.healthy('p')).toBe(false)
    expect(h.aliveAt('p')).toBeLessThan(failedAt)
    c.advance(10)
    h.pinged('p')
    expect(h.aliveAt('p')).toBeGreaterThan(failedAt)
    expect(h.healthy('p')).toBe(false)
    c.advance(10)
    await h.track('p', async () => 'refused', never)
    expect(h.healthy('p')).toBe(true)
  })

  it('a send that never left (nothingSent) says nothing about the peer', async () => {
    const h = new PeerHealth(1_000, clock().now)
    await expect(
      h.track(
        'p',
        async () => {
          throw new Error('too big')
        },
        () => true,
      ),
    ).rejects.toThrow('too big')
    expect(h.healthy('p')).toBe(true)
  })
})

describe('splitByBytes', () => {
  const event = (id: string, bytes: number): EventRecord => ({ id, origin: 'a', receivedAt: 0, hops: 0, data: { pad: 'x'.repeat(bytes) } })
  const size = (e: EventRecord) => Buffer.byteLength(JSON.stringify(e)) + 1

  it('cuts events into consecutive batches within the byte and count limits, in order', () => {
    const events = ['a', 'b', 'c', 'd', 'e'].map((id) => event(id, 100))
    const split = splitByBytes(events, size(events[0]!) * 2, 10)
    expect('batches' in split && split.batches.map((b) => b.map((e) => e.id))).toEqual([['a', 'b'], ['c', 'd'], ['e']])
    const byCount = splitByBytes(events, 1_000_000, 3)
    expect('batches' in byCount && byCount.batches.map((b) => b.length)).toEqual([3, 2])
  })

  it('names an event too big for any batch', () => {
    const events = [event('a', 10), event('b', 5_000)]
    expect(splitByBytes(events, 1_000, 10)).toEqual({ tooBig: { index: 1, bytes: size(events[1]!) - 1 } })
  })
})
