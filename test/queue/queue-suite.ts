// The one suite every queue backend must pass (abstract-level's pattern): order, nack,
// dedupe, caps, dead letters, state, handoff, lifecycle. What differs by backend (a restart
// keeps or loses everything) is asked of `backend.survivesRestart`, never of its name.

import { afterEach, describe, expect, it } from 'vitest'
import { uuidv7 } from '../../src/ids.js'
import { batchDedupeId } from '../../src/queue/admission.js'
import type { EventQueue, EventRecord, HandoffBatch, QueuedEvent, TakeForHandoffOptions } from '../../src/queue/types.js'
import { type Backend, type Place, type QueueSettings, bytesOf, event } from './backends.js'

const ids = (events: { id: string }[]): string[] => events.map((e) => e.id)
/** A batch without the stored texts a backend may add (`HandoffBatch.texts`), after checking they are its events' JSON. */
function withoutTexts(batch: HandoffBatch | undefined): Omit<HandoffBatch, 'texts'> | undefined {
  if (batch === undefined) return undefined
  const { texts, ...rest } = batch
  if (texts !== undefined) expect(texts.map((t) => JSON.parse(t))).toEqual(batch.events)
  return rest
}

/** Take for peer-b with maxHops 2 unless told otherwise. */
const take = (q: EventQueue, max: number, handoffId: string, options: Partial<TakeForHandoffOptions> = {}) =>
  q.takeForHandoff(max, { handoffId, peer: 'peer-b', maxHops: 2, ...options })

export function queueSuite(backend: Backend): void {
  describe(`${backend.name} queue`, () => {
    let place: Place
    const open = async (settings?: Partial<QueueSettings>): Promise<ReturnType<Place['open']>> => {
      place = backend.place()
      return place.open(settings)
    }
    afterEach(async () => place.dispose())

    describe('order', () => {
      it('hands events out oldest first and acks them away', async () => {
        const q = await open()
        await q.enqueue([event('a'), event('b')])
        await q.enqueue([event('c')])
        expect(q.depth()).toMatchObject({ unprocessed: 3, inflight: 0 })
        const first = await q.dequeue(2)
        expect(ids(first)).toEqual(['a', 'b'])
        expect(q.depth()).toMatchObject({ unprocessed: 1, inflight: 2 })
        expect(ids(await q.dequeue(5))).toEqual(['c'])
        expect(await q.dequeue(5)).toEqual([])
        for (const e of first) await q.ack(e)
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 1 })
      })

      it('returns what was stored, with an opaque key', async () => {
        const q = await open()
        const e = event('a', { pipeline: 'p', hops: 2 })
        await q.enqueue([e])
        const [got] = await q.dequeue(1)
        expect(got).toEqual({ ...e, key: expect.any(String) })
      })

      it('never hands the same event to two concurrent dequeues', async () => {
        const q = await open()
        await q.enqueue(Array.from({ length: 100 }, (_, i) => event(`e${i}`)))
        const got = (await Promise.all(Array.from({ length: 10 }, () => q.dequeue(7)))).flat()
        expect(got).toHaveLength(70)
        expect(new Set(ids(got)).size).toBe(70)
        expect(q.depth()).toMatchObject({ unprocessed: 30, inflight: 70 })
      })

      it('dequeue(0) and an empty queue give []', async () => {
        const q = await open()
        expect(await q.dequeue(3)).toEqual([])
        await q.enqueue([event('a')])
        expect(await q.dequeue(0)).toEqual([])
      })
    })

    describe('concurrency', () => {
      it('keeps every event in exactly one place through a storm of concurrent calls', async () => {
        const q = await open({ maxEvents: 50 })
        const accepted = new Set<string>()
        const acked: string[] = []
        const handed: string[] = []
        let produced = 0
        const producer = async (): Promise<void> => {
          while (produced < 300) {
            const batch = Array.from({ length: 1 + (produced % 4) }, () => event(`s${produced++}`))
            try {
              for (const r of await q.enqueue(batch)) if (!r.duplicate) accepted.add(r.id)
            } catch (err) {
              if ((err as { code?: string }).code !== 'BINGE_QUEUE_FULL') throw err
              await new Promise((resolve) => setTimeout(resolve, 1)) // full: back off
            }
          }
        }
        // Hands the newest off: every other batch acked by the peer, the rest refused.
        let batches = 0
        const handOff = async (handoffId: string): Promise<void> => {
          const batch = await take(q, 2, handoffId)
          if (batch === undefined) return
          if (batches++ % 2 === 1) await q.returnHandoff(handoffId)
          else {
            await q.completeHandoff(handoffId)
            handed.push(...ids(batch.events))
          }
        }
        const worker = async (seed: number): Promise<void> => {
          for (let round = 0; produced < 300 || q.depth().unprocessed > 0; round++) {
            if ((seed + round) % 4 === 3) {
              await handOff(`h${seed}-${round}`)
              continue
            }
            const got = await q.dequeue(3)
            if (got.length === 0) await new Promise((resolve) => setTimeout(resolve, 1))
            for (const [i, e] of got.entries()) {
              const choice = (seed + round + i) % 5
              if (choice === 0) await q.nack([e])
              else if (choice === 1) await q.ack(e, { deadletter: [{ pipeline: 'p', error: 'x', attempts: 1 }] })
              else {
                await q.ack(e)
                acked.push(e.id)
              }
            }
          }
        }
        await Promise.all([producer(), producer(), worker(0), worker(1), worker(2)])
        const dead = (await q.listDeadletter()).map((l) => l.event.id)
        const all = [...acked, ...dead, ...handed]
        expect(handed.length).toBeGreaterThan(0)
        expect(new Set(all).size).toBe(all.length)
        expect(new Set(all)).toEqual(accepted)
        expect(q.depth()).toEqual({ unprocessed: 0, inflight: 0, handingOff: 0, deadletter: dead.length, bytes: 0 })
        expect(await q.pendingHandoffs()).toEqual([])
      })
    })

    describe('nack', () => {
      it('puts events back in their original place', async () => {
        const q = await open()
        await q.enqueue(['a', 'b', 'c', 'd', 'e'].map((id) => event(id)))
        const [a, b, c] = (await q.dequeue(3)) as [QueuedEvent, QueuedEvent, QueuedEvent]
        await q.nack([b])
        expect(ids(await q.dequeue(1))).toEqual(['b'])
        await q.nack([c, a])
        expect(ids(await q.dequeue(10))).toEqual(['a', 'c', 'd', 'e'])
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 5 })
      })

      it('gives an event back as stored after a nack, whatever the worker changed in it', async () => {
        // As the HTTP door enqueues: each event's data with the text it was parsed from.
        const q = await open()
        const texts = ['{"n":1,"tags":["x"]}', '{"n":2}']
        const sent = [event('a', { pipeline: 'p' }), event('b', { keyed: true })]
        sent.forEach((e, i) => {
          e.data = JSON.parse(texts[i]!)
        })
        await q.enqueue(sent, { dataTexts: texts })
        const first = await q.dequeue(2)
        expect(first).toEqual([
          { ...sent[0], key: first[0]!.key },
          { ...sent[1], key: first[1]!.key },
        ])
        // What JSON.parse of the stored event gives, in its field order.
        expect(Object.keys(first[0]!)).toEqual(['id', 'origin', 'receivedAt', 'hops', 'pipeline', 'data', 'key'])
        expect(Object.keys(first[1]!)).toEqual(['id', 'origin', 'receivedAt', 'hops', 'keyed', 'data', 'key'])
        // A step changes the events it was given, then the worker gives them back.
        ;(first[0]!.data as { tags: string[] }).tags.push('changed')
        first[1]!.data.n = 99
        first[1]!.origin = 'elsewhere'
        await q.nack(first)
        const again = await q.dequeue(2)
        expect(again.map((e) => e.data)).toEqual([JSON.parse(texts[0]!), JSON.parse(texts[1]!)])
        expect(again[1]!.origin).toBe('node-test')
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 2 })
      })

      it('refuses to finish an event twice', async () => {
        const q = await open()
        await q.enqueue([event('a')])
        const [a] = (await q.dequeue(1)) as [QueuedEvent]
        await q.ack(a, { state: [{ type: 'put', key: 'k', value: 1 }] })
        await expect(q.ack(a, { state: [{ type: 'put', key: 'k', value: 2 }] })).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        await expect(q.nack([a])).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        expect(await q.getState('k')).toBe(1)
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 0, deadletter: 0, bytes: 0 })
      })
    })

    describe('dedupe', () => {
      it('within one call', async () => {
        const q = await open()
        expect(await q.enqueue([event('a'), event('a'), event('b')])).toEqual([
          { id: 'a', duplicate: false },
          { id: 'a', duplicate: true },
          { id: 'b', duplicate: false },
        ])
        expect(q.depth().unprocessed).toBe(2)
      })

      it('across concurrent calls', async () => {
        const q = await open()
        const results = await Promise.all([q.enqueue([event('a')]), q.enqueue([event('a')]), q.enqueue([event('a')])])
        expect(results.flat().filter((r) => !r.duplicate)).toHaveLength(1)
        expect(q.depth().unprocessed).toBe(1)
      })

      it('after the event was processed', async () => {
        const q = await open()
        await q.enqueue([event('a')])
        await q.ack((await q.dequeue(1))[0]!)
        expect(await q.enqueue([event('a')])).toEqual([{ id: 'a', duplicate: true }])
        expect(q.depth().unprocessed).toBe(0)
      })

      it(`after a restart only if the queue survives it (${backend.survivesRestart})`, async () => {
        const q = await open()
        await q.enqueue([event('a')])
        await q.close()
        const again = await place.open()
        expect(await again.enqueue([event('a')])).toEqual([{ id: 'a', duplicate: backend.survivesRestart }])
      })

      it('forgets ids after the window, and the sweep keeps ids accepted again', async () => {
        let now = 10_000
        const q = await open({ dedupeWindowMs: 1000, now: () => now })
        await q.enqueue([event('a'), event('b')])
        now = 10_999
        expect(await q.enqueue([event('a')])).toEqual([{ id: 'a', duplicate: true }])
        now = 11_000
        expect(await q.enqueue([event('a')])).toEqual([{ id: 'a', duplicate: false }])
        now = 11_500
        // b is forgotten; a's first acceptance (10_000) expires, its second (11_000) must not.
        expect(await q.sweepDedupe()).toBe(1)
        expect(await q.enqueue([event('a'), event('b')])).toEqual([
          { id: 'a', duplicate: true },
          { id: 'b', duplicate: false },
        ])
        expect(q.depth().unprocessed).toBe(4)
      })

      it('stores ids it was told are new without indexing them: no lookup, no dedupe entry, still one copy per call', async () => {
        const q = await open()
        expect(await q.enqueue([event('n1'), event('n2')], { newIds: true })).toEqual([
          { id: 'n1', duplicate: false },
          { id: 'n2', duplicate: false },
        ])
        expect(await q.seen(['n1', 'n2'])).toEqual([false, false])
        // Within one call an id still counts once.
        expect(await q.enqueue([event('n3'), event('n3')], { newIds: true })).toEqual([
          { id: 'n3', duplicate: false },
          { id: 'n3', duplicate: true },
        ])
        // Indexed events in the same queue behave as ever.
        await q.enqueue([event('k1')])
        expect(await q.enqueue([event('k1')])).toEqual([{ id: 'k1', duplicate: true }])
        expect((await q.dequeue(10)).map((e) => e.id)).toEqual(['n1', 'n2', 'n3', 'k1'])
      })

      it('stores the data text it is given as is, and reads it back as the same data', async () => {
        const q = await open()
        const data = { t: 'room', n: [1, 2.5], nested: { s: 'x"y' } }
        const text = '{ "t" : "room", "n": [1, 2.5],\n "nested": {"s": "x\\"y"} }'
        expect(JSON.parse(text)).toEqual(data)
        await q.enqueue([{ ...event('r1'), data }], { newIds: true, dataTexts: [text] })
        expect(q.depth().bytes).toBeGreaterThan(text.length)
        const [got] = await q.dequeue(1)
        expect(got).toMatchObject({ id: 'r1', data })
      })

      it('remembers ids made durable elsewhere: duplicates within the window, stored nowhere, swept after it', async () => {
        let now = 5_000
        const q = await open({ dedupeWindowMs: 1000, now: () => now })
        await q.remember(['routed-1', 'routed-2'])
        expect(q.depth()).toMatchObject({ unprocessed: 0, bytes: 0 })
        expect(await q.seen(['routed-1', 'other'])).toEqual([true, false])
        now = 5_500
        expect(await q.enqueue([event('routed-1'), event('other')])).toEqual([
          { id: 'routed-1', duplicate: true },
          { id: 'other', duplicate: false },
        ])
        now = 6_200
        // The remembered pair goes; 'other' (accepted at 5_500) stays.
        expect(await q.sweepDedupe()).toBe(2)
        expect(await q.enqueue([event('routed-2'), event('other')])).toEqual([
          { id: 'routed-2', duplicate: false },
          { id: 'other', duplicate: true },
        ])
      })
    })

    describe('batches (EnqueueOptions.batch)', () => {
      it('remember a batch by one entry: a resend is a duplicate whole, ids that may come again keep their own, swept after the window', async () => {
        let now = 1_000
        const q = await open({ dedupeWindowMs: 1000, now: () => now })
        const [m1, m2] = [uuidv7(), uuidv7()]
        const keyed = event('k-0', { keyed: true })
        // Ids binge made, a client's key, and a forward's derived id (sent again in another batch when the forward is retried).
        const batch = [event(m1), event(m2), keyed, event(`${m1}/archive`)]
        expect(await q.enqueue(batch, { batch: 'peer-a\u0000h1', fingerprint: true })).toEqual([
          { id: m1, duplicate: false },
          { id: m2, duplicate: false },
          { id: 'k-0', duplicate: false },
          { id: `${m1}/archive`, duplicate: false },
        ])
        // One entry for the batch, one for each id that may come again elsewhere; none for ids binge made.
        expect(await q.seen([batchDedupeId('peer-a\u0000h1'), m1, m2, 'k-0', `${m1}/archive`])).toEqual([true, false, false, true, true])
        now = 1_500
        // The same batch again (a resend after a lost answer): nothing stored.
        expect(await q.enqueue(batch, { batch: 'peer-a\u0000h1', fingerprint: true })).toEqual(
          batch.map((e) => ({ id: e.id, duplicate: true })),
        )
        // Another batch is looked up id by id: the key and the derived id are duplicates.
        expect(await q.enqueue([event('b-3'), keyed, event(`${m1}/archive`)], { batch: 'peer-a\u0000h2', fingerprint: true })).toEqual([
          { id: 'b-3', duplicate: false },
          { id: 'k-0', duplicate: true },
          { id: `${m1}/archive`, duplicate: true },
        ])
        expect(q.depth().unprocessed).toBe(5)
        now = 2_100
        // h1's entry, k-0's and the derived id's go; h2's and b-3's (accepted at 1_500) stay.
        expect(await q.sweepDedupe()).toBe(3)
        expect(await q.seen([batchDedupeId('peer-a\u0000h1'), batchDedupeId('peer-a\u0000h2'), 'k-0', 'b-3'])).toEqual([
          false,
          true,
          false,
          true,
        ])
      })

      it('neither look up nor remember an id binge made (UUIDv7, not keyed): it comes again only inside its batch', async () => {
        const q = await open()
        const made = uuidv7()
        await q.remember([made, 'order-7'])
        // Outside a batch every id is looked up; in one, an id binge made is not, and other ids are.
        expect(await q.enqueue([event(made)])).toEqual([{ id: made, duplicate: true }])
        expect(await q.enqueue([event(made), event('order-7')], { batch: 'peer-a\u0000h1' })).toEqual([
          { id: made, duplicate: false },
          { id: 'order-7', duplicate: true },
        ])
        // A keyed id of the same shape (a client's UUIDv7 key) is looked up as any key is.
        expect(await q.enqueue([event(made, { keyed: true })], { batch: 'peer-a\u0000h2' })).toEqual([{ id: made, duplicate: true }])
        expect(q.depth().unprocessed).toBe(1)
      })

      it('take one copy of a batch sent twice at once, and never mistake a batch entry for an event id', async () => {
        const q = await open()
        const batch = [event('c-1'), event('c-2')]
        const [first, second] = await Promise.all([
          q.enqueue(batch, { batch: 'peer-a\u0000h1' }),
          q.enqueue(batch, { batch: 'peer-a\u0000h1' }),
        ])
        expect([first, second].map((r) => r.every((x) => x.duplicate)).sort()).toEqual([false, true])
        // The batch's entry is not an id: an event so named is still new.
        expect(await q.enqueue([event('peer-a\u0000h1')])).toEqual([{ id: 'peer-a\u0000h1', duplicate: false }])
        expect(q.depth().unprocessed).toBe(3)
      })
    })

    describe('idempotency fingerprints', () => {
      it('refuse an id reused for another event (the whole call), take the same event again as a duplicate, and are swept with the id', async () => {
        let now = 1_000
        const q = await open({ dedupeWindowMs: 1000, now: () => now })
        // keyed: a client chose the id (an Idempotency-Key), so it may come again.
        const first = event('k-0', { data: { n: 'first' }, keyed: true })
        const other = { ...first, data: { n: 'second' } }
        expect(await q.enqueue([first], { fingerprint: true })).toEqual([{ id: 'k-0', duplicate: false }])
        // The same pipeline and data under another envelope (a resend, a later hop): a duplicate.
        expect(await q.enqueue([{ ...first, hops: 1, origin: 'x', receivedAt: 5 }], { fingerprint: true })).toEqual([
          { id: 'k-0', duplicate: true },
        ])
        const conflict = (events: EventRecord[]) =>
          expect(q.enqueue(events, { fingerprint: true })).rejects.toMatchObject({ code: 'BINGE_IDEMPOTENCY_CONFLICT', status: 422 })
        await conflict([event('fresh'), other])
        await conflict([{ ...first, pipeline: 'p' }])
        expect(await q.seen(['fresh'])).toEqual([false])
        // Without fingerprints (a forward's retry) the id is a duplicate, as ever.
        expect(await q.enqueue([other])).toEqual([{ id: 'k-0', duplicate: true }])
        expect(q.depth().unprocessed).toBe(1)
        now = 2_100
        expect(await q.sweepDedupe()).toBe(1)
        expect(await q.enqueue([other], { fingerprint: true })).toEqual([{ id: 'k-0', duplicate: false }])
      })

      it('are kept only for keyed ids: an id binge made can only come again as the same event', async () => {
        const q = await open()
        const made = event('made-here', { data: { n: 'first' } })
        expect(await q.enqueue([made], { fingerprint: true })).toEqual([{ id: 'made-here', duplicate: false }])
        // No fingerprint was kept for it, so another body under the id is a duplicate, not a conflict,
        // even when that body claims to be keyed.
        const reused = { ...made, keyed: true as const, data: { n: 'second' } }
        expect(await q.enqueue([reused], { fingerprint: true })).toEqual([{ id: 'made-here', duplicate: true }])
        expect(q.depth().unprocessed).toBe(1)
      })
    })

    describe('caps', () => {
      it('takes a call whole or not at all, up to the exact boundary', async () => {
        const q = await open({ maxEvents: 3 })
        await q.enqueue([event('a'), event('b')])
        const full = q.enqueue([event('c'), event('d')])
        await expect(full).rejects.toMatchObject({ code: 'BINGE_QUEUE_FULL', status: 429, retryAfter: expect.any(Number) })
        expect(q.depth().unprocessed).toBe(2)
        expect(await q.enqueue([event('c')])).toEqual([{ id: 'c', duplicate: false }])
        await expect(q.enqueue([event('d')])).rejects.toMatchObject({ code: 'BINGE_QUEUE_FULL' })
        // Duplicates take no room, and a refused id was never remembered.
        expect(await q.enqueue([event('a')])).toEqual([{ id: 'a', duplicate: true }])
        await q.ack((await q.dequeue(1))[0]!)
        expect(await q.enqueue([event('d')])).toEqual([{ id: 'd', duplicate: false }])
      })

      it('counts in-flight events until they are acked', async () => {
        const q = await open({ maxEvents: 2 })
        await q.enqueue([event('a'), event('b')])
        const [a] = await q.dequeue(1)
        await expect(q.enqueue([event('c')])).rejects.toMatchObject({ code: 'BINGE_QUEUE_FULL' })
        await q.ack(a!)
        await q.enqueue([event('c')])
        expect(q.depth()).toMatchObject({ unprocessed: 2, inflight: 0 })
      })

      it('refuses one call of a concurrent group without touching the others', async () => {
        const q = await open({ maxEvents: 3 })
        const calls = [q.enqueue([event('a'), event('b')]), q.enqueue([event('c'), event('d')]), q.enqueue([event('e')])]
        const settled = await Promise.allSettled(calls)
        expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
        expect(ids(await q.dequeue(10))).toEqual(['a', 'b', 'e'])
      })

      it('fails a call with a malformed event on its own, never its group', async () => {
        const q = await open()
        const bad = event('bad', { data: { n: 1n } })
        const settled = await Promise.allSettled([q.enqueue([event('a')]), q.enqueue([event('b'), bad]), q.enqueue([event('c')])])
        expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
        expect(settled[1]).toMatchObject({ reason: { code: 'BINGE_BAD_REQUEST' } })
        expect(ids(await q.dequeue(10))).toEqual(['a', 'c'])
      })

      it('counts the JSON bytes of events against maxBytes', async () => {
        const [a, b, c] = ['a', 'b', 'c'].map((id) => event(id, { data: { v: 'x'.repeat(100) } })) as [
          ReturnType<typeof event>,
          ReturnType<typeof event>,
          ReturnType<typeof event>,
        ]
        const q = await open({ maxBytes: bytesOf(a) + bytesOf(b) })
        await q.enqueue([a, b])
        expect(q.depth().bytes).toBe(bytesOf(a) + bytesOf(b))
        await expect(q.enqueue([c])).rejects.toMatchObject({ code: 'BINGE_QUEUE_FULL' })
        await q.ack((await q.dequeue(1))[0]!)
        await q.enqueue([c])
        expect(q.depth().bytes).toBe(bytesOf(b) + bytesOf(c))
      })
    })

    describe('dead letters', () => {
      it('keeps each failed pipeline as accepted, lists and replays them', async () => {
        const q = await open({ now: () => 42 })
        await q.enqueue([event('a', { data: { v: 1 } }), event('b')])
        const [a, b] = (await q.dequeue(2)) as [QueuedEvent, QueuedEvent]
        a.data.v = 'changed by a step'
        await q.ack(a, {
          deadletter: [
            { pipeline: 'p1', error: 'boom', attempts: 3 },
            { pipeline: 'p2', error: 'bang', attempts: 1 },
          ],
        })
        await q.ack(b, { deadletter: [{ pipeline: 'p1', error: 'boom', attempts: 5 }] })
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 0, deadletter: 3 })
        const letters = await q.listDeadletter()
        expect(letters.map((l) => [l.event.id, l.pipeline, l.error, l.attempts, l.at])).toEqual([
          ['a', 'p1', 'boom', 3, 42],
          ['a', 'p2', 'bang', 1, 42],
          ['b', 'p1', 'boom', 5, 42],
        ])
        expect(letters[0]!.event.data).toEqual({ v: 1 })
        expect(await q.listDeadletter(1)).toHaveLength(1)

        expect(await q.replayDeadletter(['a', 'zzz'])).toEqual(['a'])
        expect(q.depth()).toMatchObject({ unprocessed: 2, deadletter: 1 })
        const replayed = await q.dequeue(10)
        expect(replayed.map((e) => [e.id, e.pipeline])).toEqual([
          ['a', 'p1'],
          ['a', 'p2'],
        ])
        expect(await q.replayDeadletter()).toEqual(['b'])
        expect(await q.replayDeadletter()).toEqual([])
        expect(q.depth()).toMatchObject({ unprocessed: 1, inflight: 2, deadletter: 0 })
      })

      it('keeps an event that was never queued as a dead letter, counted, listed and replayable', async () => {
        const q = await open({ now: () => 7 })
        const raw = event('raw-1', { meta: { topic: 'sensors/x' }, data: { raw: 'not json' } })
        await q.putDeadletter({ ...raw, key: 'not stored' } as EventRecord, { pipeline: 'input:mqtt', error: 'malformed', attempts: 1 })
        expect(q.depth()).toMatchObject({ unprocessed: 0, deadletter: 1 })
        expect(await q.listDeadletter()).toEqual([{ event: raw, pipeline: 'input:mqtt', error: 'malformed', attempts: 1, at: 7 }])
        expect(await q.replayDeadletter()).toEqual(['raw-1'])
        expect((await q.dequeue(1)).map(({ key: _key, ...record }) => record)).toEqual([{ ...raw, pipeline: 'input:mqtt' }])
      })

      it('reads a list limit as abstract-level does: a whole number from 0, anything else lists all', async () => {
        const q = await open()
        await q.enqueue([event('a'), event('b'), event('c')])
        for (const e of await q.dequeue(3)) await q.ack(e, { deadletter: [{ pipeline: 'p', error: 'boom', attempts: 1 }] })
        expect(ids((await q.listDeadletter(2)).map((l) => l.event))).toEqual(['a', 'b'])
        expect(await q.listDeadletter(0)).toEqual([])
        for (const limit of [undefined, -1, -2, 1.5, Number.NaN]) expect(await q.listDeadletter(limit)).toHaveLength(3)
      })
    })

    describe('state', () => {
      it('commits state changes with the ack', async () => {
        const q = await open()
        await q.enqueue([event('a'), event('b')])
        const [a, b] = (await q.dequeue(2)) as [QueuedEvent, QueuedEvent]
        expect(await q.getState('count')).toBeUndefined()
        await q.ack(a, {
          state: [
            { type: 'put', key: 'count', value: { n: 1 } },
            { type: 'put', key: 'tmp', value: 'x' },
          ],
        })
        expect(await q.getState('count')).toEqual({ n: 1 })
        await q.ack(b, { state: [{ type: 'del', key: 'tmp' }] })
        expect(await q.getState('tmp')).toBeUndefined()
        await q.close()
        const again = await place.open()
        expect(await again.getState('count')).toEqual(backend.survivesRestart ? { n: 1 } : undefined)
      })
    })

    describe('ackBatch', () => {
      it('finishes several events in one go with their dead letters, their state and the batch state, in order', async () => {
        const q = await open({ now: () => 7 })
        await q.enqueue([event('a', { data: { v: 1 } }), event('b'), event('c')])
        const [a, b, c] = (await q.dequeue(3)) as [QueuedEvent, QueuedEvent, QueuedEvent]
        a.data.v = 'changed by a step'
        await q.ackBatch(
          [a, b],
          [
            { deadletter: [{ pipeline: 'p', error: 'boom', attempts: 2 }], state: [{ type: 'put', key: 'w/1', value: 1 }] },
            {
              state: [
                { type: 'put', key: 'w/1', value: 2 },
                { type: 'put', key: 'w/2', value: 'x' },
              ],
            },
          ],
          [
            { type: 'put', key: 'w/1', value: 3 },
            { type: 'del', key: 'w/2' },
          ],
        )
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 1, deadletter: 1, bytes: bytesOf(c) })
        expect(await q.getState('w/1')).toBe(3)
        expect(await q.getState('w/2')).toBeUndefined()
        const [letter] = await q.listDeadletter()
        expect(letter).toMatchObject({ pipeline: 'p', error: 'boom', attempts: 2, at: 7, event: { id: 'a', data: { v: 1 } } })
      })

      it('is all or nothing: one event not in flight changes nothing', async () => {
        const q = await open()
        await q.enqueue([event('a'), event('b')])
        const [a, b] = (await q.dequeue(2)) as [QueuedEvent, QueuedEvent]
        await q.ack(b)
        await expect(q.ackBatch([a, b], [{}, {}], [{ type: 'put', key: 's', value: 1 }])).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        await expect(q.ackBatch([a], [], [])).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        expect(q.depth()).toMatchObject({ inflight: 1 })
        expect(await q.getState('s')).toBeUndefined()
        await q.ackBatch([a], [{}])
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 0, bytes: 0 })
      })

      it('with no events commits state alone, and scanState lists a prefix in key order', async () => {
        const q = await open()
        await q.ackBatch(
          [],
          [],
          [
            { type: 'put', key: 'p/0.window/k:"b"', value: { n: 2 } },
            { type: 'put', key: 'p/0.window/k:"a"', value: { n: 1 } },
            { type: 'put', key: 'p/1.dedupe/k:"a"', value: 5 },
            { type: 'put', key: 'p/0.windowz', value: 'not under the prefix' },
          ],
        )
        expect(await q.scanState('p/0.window/')).toEqual([
          { key: 'p/0.window/k:"a"', value: { n: 1 } },
          { key: 'p/0.window/k:"b"', value: { n: 2 } },
        ])
        expect((await q.scanState('p/')).map((e) => e.key)).toEqual([
          'p/0.window/k:"a"',
          'p/0.window/k:"b"',
          'p/0.windowz',
          'p/1.dedupe/k:"a"',
        ])
        expect(await q.scanState('q/')).toEqual([])
        await q.close()
        const again = await place.open()
        expect(await again.scanState('p/1.')).toEqual(backend.survivesRestart ? [{ key: 'p/1.dedupe/k:"a"', value: 5 }] : [])
      })
    })

    describe('restart', () => {
      it(backend.survivesRestart ? 'returns in-flight events to their place' : 'starts empty', async () => {
        const q = await open()
        await q.enqueue(['a', 'b', 'c', 'd'].map((id) => event(id)))
        const [, b] = (await q.dequeue(2)) as [QueuedEvent, QueuedEvent]
        await q.ack(b, { deadletter: [{ pipeline: 'p', error: 'e', attempts: 1 }] })
        await q.close() // in-process stand-in for a crash: close moves nothing (crash.test.ts kills -9)
        const again = await place.open()
        if (backend.survivesRestart) {
          expect(again.depth()).toMatchObject({ unprocessed: 3, inflight: 0, deadletter: 1 })
          expect(ids(await again.dequeue(10))).toEqual(['a', 'c', 'd'])
          await again.enqueue([event('e')])
          expect(ids(await again.dequeue(10))).toEqual(['e'])
        } else {
          expect(again.depth()).toEqual({ unprocessed: 0, inflight: 0, handingOff: 0, deadletter: 0, bytes: 0 })
        }
      })
    })

    describe('handoff', () => {
      it('takes the newest unprocessed events as one batch, listed in queue order', async () => {
        const q = await open({ now: () => 5_000 })
        const events = ['a', 'b', 'c', 'd', 'e'].map((id) => event(id, { pipeline: id === 'e' ? 'p' : undefined }))
        await q.enqueue(events)
        const batch = await take(q, 2, 'h1')
        expect(withoutTexts(batch)).toEqual({ handoffId: 'h1', peer: 'peer-b', takenAt: 5_000, events: events.slice(3) })
        expect(ids((await take(q, 2, 'h2'))!.events)).toEqual(['b', 'c'])
        expect(ids(await q.dequeue(10))).toEqual(['a'])
      })

      it('keeps a batch within maxBytes and never takes an event bigger than that alone', async () => {
        const q = await open()
        const small = ['a', 'b', 'c', 'd'].map((id) => event(id, {}, 300))
        const huge = event('huge', {}, 2_000)
        await q.enqueue([small[0]!, small[1]!, huge, small[2]!, small[3]!])
        const maxBytes = bytesOf(small[0]!) * 2 + 10
        // Newest first: d and c fit, b would not; the huge one is passed over by every take.
        expect(ids((await take(q, 10, 'h1', { maxBytes }))!.events)).toEqual(['c', 'd'])
        expect(ids((await take(q, 10, 'h2', { maxBytes }))!.events)).toEqual(['a', 'b'])
        expect(await take(q, 10, 'h3', { maxBytes })).toBeUndefined()
        // It stays here, to be processed here.
        expect(ids(await q.dequeue(10))).toEqual(['huge'])
      })

      it('takes only events under maxHops, and none that came from the receiving node', async () => {
        const q = await open()
        await q.enqueue([
          event('a'),
          event('b', { hops: 2 }),
          event('c', { hops: 1, pipeline: 'p' }),
          event('d', { origin: 'node-b' }),
          event('e', { hops: 3 }),
        ])
        expect(ids((await take(q, 10, 'h1', { excludeOrigin: 'node-b' }))!.events)).toEqual(['a', 'c'])
        expect(ids((await take(q, 10, 'h2'))!.events)).toEqual(['d'])
        expect(await take(q, 10, 'h3')).toBeUndefined()
        expect(ids((await take(q, 10, 'h3', { maxHops: 4 }))!.events)).toEqual(['b', 'e'])
      })

      it('never takes in-flight events, and gives undefined when nothing may be taken', async () => {
        const q = await open()
        expect(await take(q, 5, 'h1')).toBeUndefined()
        await q.enqueue([event('a'), event('b'), event('c')])
        const [, b] = (await q.dequeue(3)) as [QueuedEvent, QueuedEvent, QueuedEvent]
        expect(await take(q, 5, 'h1')).toBeUndefined()
        await q.nack([b])
        expect(await take(q, 0, 'h1')).toBeUndefined()
        expect(ids((await take(q, 5, 'h1'))!.events)).toEqual(['b'])
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 2, handingOff: 1 })
      })

      it('counts handing-off events in depth and against the caps until the peer acks', async () => {
        const [a, b, c] = ['a', 'b', 'c'].map((id) => event(id, { data: { v: 'x'.repeat(100) } })) as [
          EventRecord,
          EventRecord,
          EventRecord,
        ]
        const q = await open({ maxEvents: 3, maxBytes: bytesOf(a) + bytesOf(b) + bytesOf(c) })
        await q.enqueue([a, b, c])
        await take(q, 2, 'h1')
        expect(q.depth()).toEqual({
          unprocessed: 1,
          inflight: 0,
          handingOff: 2,
          deadletter: 0,
          bytes: bytesOf(a) + bytesOf(b) + bytesOf(c),
        })
        await expect(q.enqueue([event('d')])).rejects.toMatchObject({ code: 'BINGE_QUEUE_FULL' })
        await q.completeHandoff('h1')
        expect(q.depth()).toEqual({ unprocessed: 1, inflight: 0, handingOff: 0, deadletter: 0, bytes: bytesOf(a) })
        expect(await q.pendingHandoffs()).toEqual([])
        // Unknown or finished ids are no-ops; what was handed off stays deduped here.
        await q.completeHandoff('h1')
        await q.returnHandoff('h1')
        await q.completeHandoff('nope')
        expect(await q.enqueue([b, event('d')])).toEqual([
          { id: 'b', duplicate: true },
          { id: 'd', duplicate: false },
        ])
        expect(q.depth()).toMatchObject({ unprocessed: 2, handingOff: 0 })
      })

      it('returns a batch to its old place, behind the dequeue cursor, and wakes workers', async () => {
        const q = await open()
        const events = ['a', 'b', 'c', 'd'].map((id) => event(id))
        await q.enqueue(events)
        await take(q, 2, 'h1')
        await q.enqueue([event('e')])
        expect(ids(await q.dequeue(10))).toEqual(['a', 'b', 'e'])
        const waiting = q.waitForWork()
        await q.returnHandoff('h1')
        await waiting
        expect(q.depth()).toMatchObject({ unprocessed: 2, inflight: 3, handingOff: 0 })
        const again = await q.dequeue(10)
        expect(again.map(({ key: _key, ...record }) => record)).toEqual(events.slice(2))
        expect(await q.pendingHandoffs()).toEqual([])
      })

      it('refuses a handoff id still pending or unfit, and allows it again once finished', async () => {
        const q = await open()
        await q.enqueue([event('a'), event('b')])
        await take(q, 1, 'h1')
        await expect(take(q, 1, 'h1')).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        await expect(take(q, 1, '')).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        await expect(take(q, 1, 'h\u0000x')).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        expect(q.depth()).toMatchObject({ unprocessed: 1, handingOff: 1 })
        await q.completeHandoff('h1')
        expect(ids((await take(q, 1, 'h1'))!.events)).toEqual(['a'])
      })

      it('finishes a batch once when the ack and a take-back race', async () => {
        const q = await open()
        await q.enqueue([event('a'), event('b')])
        await take(q, 2, 'h1')
        await Promise.all([q.completeHandoff('h1'), q.returnHandoff('h1'), q.completeHandoff('h1')])
        expect(q.depth()).toEqual({ unprocessed: 0, inflight: 0, handingOff: 0, deadletter: 0, bytes: 0 })
        expect(await q.dequeue(10)).toEqual([])
      })

      it('never lets a take and a dequeue share an event', async () => {
        const q = await open()
        await q.enqueue(Array.from({ length: 100 }, (_, i) => event(`e${i}`)))
        const calls = Array.from({ length: 10 }, (_, i) =>
          i % 2 === 0 ? q.dequeue(7) : take(q, 7, `h${i}`).then((batch) => batch?.events ?? []),
        )
        const got = (await Promise.all(calls)).flat()
        expect(new Set(ids(got)).size).toBe(70)
        expect(q.depth()).toMatchObject({ unprocessed: 30, inflight: 35, handingOff: 35 })
        expect((await q.pendingHandoffs()).flatMap((b) => ids(b.events)).sort()).toEqual(
          got
            .filter((e) => !('key' in e))
            .map((e) => e.id)
            .sort(),
        )
      })

      it(backend.survivesRestart ? 'keeps batches promised to their peer across a restart' : 'loses batches with a restart', async () => {
        let now = 7_000
        const q = await open({ now: () => now })
        const events = ['a', 'b', 'c', 'd', 'e'].map((id) => event(id))
        await q.enqueue(events)
        await q.dequeue(1)
        await q.takeForHandoff(2, { handoffId: 'h1', peer: 'p1', maxHops: 1 })
        now = 7_001
        await q.takeForHandoff(1, { handoffId: 'h2', peer: 'p2', maxHops: 1 })
        const pending = [
          { handoffId: 'h1', peer: 'p1', takenAt: 7_000, events: events.slice(3) },
          { handoffId: 'h2', peer: 'p2', takenAt: 7_001, events: events.slice(2, 3) },
        ]
        expect((await q.pendingHandoffs()).map(withoutTexts)).toEqual(pending)
        await q.close()
        const again = await place.open({ now: () => now })
        if (!backend.survivesRestart) {
          expect(await again.pendingHandoffs()).toEqual([])
          expect(again.depth()).toMatchObject({ unprocessed: 0, handingOff: 0, bytes: 0 })
          return
        }
        // In flight goes back; handing off stays promised and is never handed to a worker.
        expect(again.depth()).toEqual({
          unprocessed: 2,
          inflight: 0,
          handingOff: 3,
          deadletter: 0,
          bytes: events.reduce((n, e) => n + bytesOf(e), 0),
        })
        expect((await again.pendingHandoffs()).map(withoutTexts)).toEqual(pending)
        expect(ids(await again.dequeue(10))).toEqual(['a', 'b'])
        expect(await again.dequeue(10)).toEqual([])
        await expect(again.takeForHandoff(1, { handoffId: 'h1', peer: 'p1', maxHops: 1 })).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        await again.returnHandoff('h2')
        await again.completeHandoff('h1')
        expect(ids(await again.dequeue(10))).toEqual(['c'])
        await again.close()
        const third = await place.open()
        expect(await third.pendingHandoffs()).toEqual([])
        expect(third.depth()).toMatchObject({ unprocessed: 3, handingOff: 0 })
      })

      it('seen() tells which ids were accepted here within the dedupe window', async () => {
        let now = 1_000
        const q = await open({ dedupeWindowMs: 100, now: () => now })
        expect(await q.seen([])).toEqual([])
        await q.enqueue([event('a'), event('b', { hops: 1 })])
        await take(q, 2, 'h1')
        await q.completeHandoff('h1') // handed away, still remembered as accepted
        expect(await q.seen(['a', 'x', 'b', 'a'])).toEqual([true, false, true, true])
        now = 1_099
        await q.enqueue([event('c')])
        expect(await q.seen(['a', 'c'])).toEqual([true, true])
        now = 1_100
        expect(await q.seen(['a', 'b', 'c'])).toEqual([false, false, true])
      })
    })

    describe('lifecycle', () => {
      it('answers calls that ask for nothing alike on every backend, and checks ackBatch lengths first', async () => {
        const q = await open()
        await q.enqueue([event('a')])
        const [a] = (await q.dequeue(1)) as [QueuedEvent]
        const before = q.depth()
        expect(await q.enqueue([])).toEqual([])
        for (const max of [0, -1, 0.5, Number.NaN]) expect(await q.dequeue(max)).toEqual([])
        await q.nack([])
        await q.ackBatch([], [])
        expect(await q.seen([])).toEqual([])
        await q.remember([])
        expect(await q.replayDeadletter([])).toEqual([])
        expect(q.depth()).toEqual(before)
        await expect(q.ackBatch([a], [])).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        await expect(q.ackBatch([], [{}])).rejects.toMatchObject({ code: 'BINGE_INTERNAL' })
        expect(q.depth()).toEqual(before)
        await q.ack(a)
        expect(q.depth()).toMatchObject({ unprocessed: 0, inflight: 0 })
      })

      it('waitForWork wakes on work, on nack and on abort', async () => {
        const q = await open()
        const waiting = q.waitForWork()
        await q.enqueue([event('a')])
        await waiting
        await q.waitForWork()
        const [a] = await q.dequeue(1)
        const afterNack = q.waitForWork()
        await q.nack([a!])
        await afterNack
        await q.dequeue(1)
        const controller = new AbortController()
        const aborted = q.waitForWork(controller.signal)
        controller.abort()
        await aborted
      })

      it('finishes writes under way at close, then refuses every call', async () => {
        const q: EventQueue = await open()
        const pending = q.enqueue([event('a')])
        const waiting = q.waitForWork(new AbortController().signal)
        await q.close()
        await expect(pending).resolves.toEqual([{ id: 'a', duplicate: false }])
        await waiting
        const closed = { code: 'BINGE_QUEUE_CLOSED', status: 503 }
        const e = { ...event('b'), key: '0' }
        await expect(q.enqueue([event('b')])).rejects.toMatchObject(closed)
        await expect(q.dequeue(1)).rejects.toMatchObject(closed)
        await expect(q.ack(e)).rejects.toMatchObject(closed)
        await expect(q.nack([e])).rejects.toMatchObject(closed)
        await expect(q.listDeadletter()).rejects.toMatchObject(closed)
        await expect(q.replayDeadletter()).rejects.toMatchObject(closed)
        await expect(q.getState('k')).rejects.toMatchObject(closed)
        await expect(take(q, 1, 'h')).rejects.toMatchObject(closed)
        await expect(q.completeHandoff('h')).rejects.toMatchObject(closed)
        await expect(q.returnHandoff('h')).rejects.toMatchObject(closed)
        await expect(q.pendingHandoffs()).rejects.toMatchObject(closed)
        await expect(q.seen(['a'])).rejects.toMatchObject(closed)
        await expect(q.waitForWork()).rejects.toMatchObject(closed)
        await q.close()
      })
    })
  })
}
