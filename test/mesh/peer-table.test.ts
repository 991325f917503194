// The peer table on its own, with a fake clock: freshness, expiry, room and choice;
// room believed only up to a peer's credit; a node name held by one peer id. And when a
// node that takes a handoff announces again (LoadGossip.soon), on fake timers.
import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Announcement } from '../../src/mesh/announcement.js'
import { LoadGossip } from '../../src/mesh/gossip.js'
import { PeerCredit } from '../../src/mesh/peer-credit.js'
import type { PeerHost } from '../../src/mesh/peer-host.js'
import { PeerTable } from '../../src/mesh/peer-table.js'

function announcement(peerId: string, extra: Partial<Announcement> = {}): Announcement {
  return {
    v: 1,
    node: peerId,
    peerId,
    http: '127.0.0.1:1',
    addrs: [],
    depth: 0,
    inflight: 0,
    highWaterMark: 100,
    lowWaterMark: 50,
    maxEvents: 1000,
    accepting: true,
    drainRate: 0,
    pipelines: ['p'],
    sentAt: 0,
    ...extra,
  }
}

describe('PeerTable', () => {
  it('stops using a silent peer after freshMs and forgets it after expireMs, in /stats too', () => {
    let now = 1_000
    const table = new PeerTable(1_000, 5_000, () => now)
    table.setConnected(() => true)
    table.update(announcement('x', { sentAt: now }), 'http://x')
    expect(table.withRoom().map((e) => e.announcement.peerId)).toEqual(['x'])
    now += 1_001
    expect(table.withRoom()).toEqual([])
    expect(table.runners('p')).toEqual([])
    expect(table.view(() => false).map((v) => v.peerId)).toEqual(['x'])
    now += 5_000
    expect(table.view(() => false)).toEqual([])
    expect(table.get('x')).toBeUndefined()
  })

  it('offers only accepting peers under their high-water mark and not refused lately; prefers the less loaded', () => {
    let now = 0
    const table = new PeerTable(10_000, 60_000, () => now)
    table.setConnected(() => true)
    table.update(announcement('full', { depth: 100 }), '')
    table.update(announcement('closed', { accepting: false }), '')
    table.update(announcement('busy', { depth: 90 }), '')
    table.update(announcement('idle', { depth: 1 }), '')
    expect(
      table
        .withRoom()
        .map((e) => e.announcement.peerId)
        .sort(),
    ).toEqual(['busy', 'idle'])
    expect(table.choose()?.announcement.peerId).toBe('idle')
    expect(table.leastLoaded()?.announcement.peerId).toBe('idle')
    table.markRefused('idle', 1_000)
    expect(table.choose()?.announcement.peerId).toBe('busy')
    now += 1_000
    expect(table.choose()?.announcement.peerId).toBe('idle')
  })

  it('counts what was sent to a peer since it spoke against its room, and a new announcement ends a refusal early', () => {
    let now = 0
    const table = new PeerTable(10_000, 60_000, () => now)
    table.setConnected(() => true)
    table.update(announcement('b', { depth: 40 }), '')
    const b = table.get('b')!
    expect(table.room(b)).toBe(60)
    table.noteSent('b', 50)
    expect(table.room(b)).toBe(10)
    table.noteSent('b', 10)
    expect(table.withRoom()).toEqual([])
    // Its next announcement says what it holds now: the estimate starts again from it.
    now += 100
    table.update(announcement('b', { depth: 70 }), '')
    expect(table.room(table.get('b')!)).toBe(30)
    table.markRefused('b', 2_000)
    expect(table.withRoom()).toEqual([])
    now += 100
    table.update(announcement('b', { depth: 20 }), '')
    expect(table.withRoom().map((e) => e.announcement.peerId)).toEqual(['b'])
  })

  it('counts batches on their way against the room until answered, whatever the peer announces meanwhile', () => {
    let now = 0
    const table = new PeerTable(10_000, 60_000, () => now)
    table.setConnected(() => true)
    table.update(announcement('b', { depth: 0 }), '')
    table.noteSending('b', 40)
    table.noteSending('b', 40)
    expect(table.room(table.get('b')!)).toBe(20)
    // It announced before it stored either batch: both are still on their way.
    now += 100
    table.update(announcement('b', { depth: 0 }), '')
    expect(table.room(table.get('b')!)).toBe(20)
    // One is accepted: it holds those now, until it announces them; the other is refused.
    table.noteDelivered('b', 40)
    expect(table.room(table.get('b')!)).toBe(20)
    table.noteReturned('b', 40)
    expect(table.room(table.get('b')!)).toBe(60)
    now += 100
    table.update(announcement('b', { depth: 40 }), '')
    expect(table.room(table.get('b')!)).toBe(60)
  })

  it('offers no handoff to a peer it holds no connection to, though its gossip is still fresh', () => {
    const table = new PeerTable(10_000, 60_000, () => 0)
    table.update(announcement('up'), '')
    table.update(announcement('down'), '')
    expect(table.withRoom()).toHaveLength(0) // no connection known yet: none (known only from gossip)
    table.setConnected((peerId) => peerId === 'up')
    expect(table.withRoom().map((e) => e.announcement.peerId)).toEqual(['up'])
    expect(table.runners('p')).toHaveLength(2) // routing may still dial it
    expect(table.view(() => false)).toHaveLength(2)
  })

  it('believes announced room only up to its credit: one batch at first, more as its announcements show ours drained', () => {
    let now = 0
    const table = new PeerTable(10_000, 60_000, () => now)
    table.setConnected(() => true)
    table.credit.initial = 100
    const huge = { highWaterMark: 1e12, maxEvents: 1e12 }
    table.update(announcement('liar', huge), '')
    table.update(announcement('honest', { ...huge, drainRate: 0 }), '')
    expect(table.room(table.get('liar')!)).toBe(100)
    table.noteSent('liar', 100)
    table.noteSent('honest', 100)
    expect(table.withRoom()).toEqual([])
    // The liar keeps announcing an empty queue and no drain: what it took never shows.
    // The honest peer's drain rate accounts for what it was handed: its credit grows.
    for (let i = 0; i < 20; i++) {
      now += 1_000
      table.update(announcement('liar', huge), '')
      table.update(announcement('honest', { ...huge, drainRate: 200 }), '')
    }
    expect(table.withRoom().map((e) => e.announcement.peerId)).toEqual(['honest'])
    expect(table.room(table.get('liar')!)).toBe(0)
    // 100 accounted for, at 4 credits each (PeerCredit.growth).
    expect(table.room(table.get('honest')!)).toBe(500)
    // A refusal gives the credit back: the peer holds none of those.
    table.noteSent('liar', -40)
    expect(table.room(table.get('liar')!)).toBe(40)
  })

  it('grows a credit by four per event its announcements account for, never past its max', () => {
    const credit = new PeerCredit(100, 1_600)
    credit.heard('p', 0, 0, 0)
    credit.sent('p', 100)
    credit.heard('p', 100, 0, 1_000)
    expect(credit.view('p')).toEqual({ credit: 500, unconfirmed: 0 })
    credit.sent('p', 500)
    credit.heard('p', 600, 0, 2_000)
    expect(credit.view('p')).toEqual({ credit: 1_600, unconfirmed: 0 })
  })

  it('counts announcements closer than minConfirmMs to one that confirmed anything as one: announcing more often buys a peer no more', () => {
    const credit = new PeerCredit(100, 1_600, 4, 250)
    credit.heard('p', 0, 0, 0)
    credit.sent('p', 100)
    // 100 ms later its depth shows the 100. The announcement before confirmed nothing,
    // so this one is not too soon: the first batch is confirmed within a round trip.
    credit.heard('p', 100, 0, 100)
    expect(credit.view('p')).toEqual({ credit: 500, unconfirmed: 0 })
    credit.sent('p', 500)
    // 50 ms after a confirmation: too soon, nothing is confirmed, however much it shows.
    credit.heard('p', 600, 0, 150)
    expect(credit.view('p')).toEqual({ credit: 500, unconfirmed: 500 })
    // At 350 ms (250 after the last that confirmed) the growth since it is taken whole.
    credit.heard('p', 600, 0, 350)
    expect(credit.view('p')).toEqual({ credit: 1_600, unconfirmed: 0 })
  })

  it('counts a backlog that grew by what it took as accounted for: a peer whose own output is slow still gets its room', () => {
    let now = 0
    const table = new PeerTable(10_000, 60_000, () => now)
    table.setConnected(() => true)
    table.credit.initial = 100
    const roomy = { highWaterMark: 1_000, maxEvents: 10_000, drainRate: 0 }
    table.update(announcement('slow', { ...roomy, depth: 0 }), '')
    table.noteSent('slow', 100)
    expect(table.room(table.get('slow')!)).toBe(0)
    // It drains nothing, but its announced backlog holds the 100 it took.
    now += 1_000
    table.update(announcement('slow', { ...roomy, depth: 100 }), '')
    expect(table.room(table.get('slow')!)).toBe(500)
  })

  it('a node name belongs to one peer id: a second claimant is flagged and never chosen; a quiet owner lets a new id take it', () => {
    let now = 0
    const table = new PeerTable(1_000, 60_000, () => now)
    table.setConnected((id) => id !== 'old')
    table.self = { node: 'me', peerId: 'self' }
    expect(table.update(announcement('b-real', { node: 'b' }), '')).toBeUndefined()
    expect(table.update(announcement('b-fake', { node: 'b' }), '')).toBe('b-real')
    expect(table.update(announcement('b-fake', { node: 'b' }), '')).toBeUndefined() // warned once
    expect(table.update(announcement('me-fake', { node: 'me' }), '')).toBe('self')
    expect(table.withRoom().map((e) => e.announcement.peerId)).toEqual(['b-real'])
    expect(table.runners('p').map((e) => e.announcement.peerId)).toEqual(['b-real'])
    const view = table.view(() => true)
    expect(
      view
        .filter((v) => v.conflict)
        .map((v) => v.peerId)
        .sort(),
    ).toEqual(['b-fake', 'me-fake'])
    expect(view.find((v) => v.peerId === 'b-real')?.conflict).toBe(false)
    // A node restarted under a new peer id: the old id is quiet and unconnected, so the
    // new one takes the name once the old one is no longer fresh.
    table.update(announcement('old', { node: 'c' }), '')
    expect(table.update(announcement('new', { node: 'c' }), '')).toBe('old')
    now += 1_001
    expect(table.update(announcement('new', { node: 'c' }), '')).toBeUndefined()
    expect(table.withRoom().map((e) => e.announcement.peerId)).toEqual(['new'])
  })
})

describe('LoadGossip.soon', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('announces at once for a handoff that begins, then at most once per spacing from any announcement', async () => {
    vi.useFakeTimers({ now: 10_000 })
    const published: number[] = []
    const pubsub = {
      topicValidators: new Map(),
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      subscribe: () => undefined,
      publish: async () => void published.push(Date.now()),
    }
    const host = { services: { pubsub }, getConnections: () => [] } as unknown as PeerHost
    const gossip = new LoadGossip({
      host,
      table: new PeerTable(10_000, 60_000),
      intervalMs: 1_000,
      log: pino({ level: 'silent' }),
      self: () => announcement('self'),
      onAnnouncement: () => undefined,
    })
    gossip.start()
    expect(published).toEqual([10_000])
    // A handoff arrives 10 ms after the start's announcement, which confirmed nothing: at once.
    await vi.advanceTimersByTimeAsync(10)
    gossip.soon(250)
    await vi.advanceTimersByTimeAsync(0)
    expect(published).toEqual([10_000, 10_010])
    // More batches while it runs: the next 250 ms after that one, not before.
    gossip.soon(250)
    await vi.advanceTimersByTimeAsync(249)
    expect(published).toEqual([10_000, 10_010])
    await vi.advanceTimersByTimeAsync(1)
    expect(published).toEqual([10_000, 10_010, 10_260])
    // Another handoff at 10,700 (none asked for 250 ms) is announced at once too. Going
    // on past the interval's announcement (at 11,000), its next waits 250 ms from that
    // one, the last announcement made, not from its own last.
    const at = (t: number) => vi.advanceTimersByTimeAsync(t - Date.now())
    await at(10_700)
    gossip.soon(250)
    await at(10_701)
    gossip.soon(250)
    await at(10_950)
    expect(published.slice(3)).toEqual([10_700, 10_950])
    await at(11_050)
    expect(published.at(-1)).toBe(11_000)
    gossip.soon(250)
    await at(11_249)
    expect(published.at(-1)).toBe(11_000)
    await at(11_250)
    expect(published.at(-1)).toBe(11_250)
    gossip.stop()
  })
})
