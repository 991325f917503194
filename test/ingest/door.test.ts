import { afterEach, describe, expect, it } from 'vitest'
import { EventInputError } from '../../src/events/check-event.js'
import { startTempNode, type TempNode, waitFor } from '../support/temp-node.js'
import { readJsonLines as lines } from '../support/json-lines.js'

const nodes: TempNode[] = []
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close()
})

const pipelines = `
pipelines:
  lab:
    when: '$meta.topic = "sensors/lab"'
    outputs: [{ file: { path: $DIR/lab.jsonl } }]
  everything:
    outputs: [{ file: { path: $DIR/all.jsonl } }]
`

describe('the ingest door', () => {
  it('carries an input’s meta into envelopes and `$meta` in when expressions', async () => {
    const t = await startTempNode(pipelines)
    nodes.push(t)
    await t.node.accept('{"celsius":21}', { format: 'json', meta: { input: 'mqtt', topic: 'sensors/lab' } })
    await t.node.accept('{"celsius":5}', { format: 'json', meta: { input: 'mqtt', topic: 'sensors/yard' } })
    await t.node.accept('{"celsius":9}', { format: 'json' })
    const all = await waitFor(() => (lines(`${t.dir}/all.jsonl`).length === 3 ? lines(`${t.dir}/all.jsonl`) : undefined), {
      what: 'three events',
    })
    const lab = lines(`${t.dir}/lab.jsonl`)
    expect(lab.map((e) => e.data)).toEqual([{ celsius: 21 }])
    expect(lab[0]!.meta).toEqual({ input: 'mqtt', topic: 'sensors/lab' })
    // An HTTP event has no meta at all, not an empty one.
    expect(all.find((e) => (e.data as { celsius: number }).celsius === 9)).not.toHaveProperty('meta')
  })

  it('refuses what HTTP refuses, and writes nothing', async () => {
    const t = await startTempNode(pipelines)
    nodes.push(t)
    const before = t.node.stats().counters.received
    await expect(t.node.accept('{"constructor":{"x":1}}', { format: 'json', meta: { topic: 'a' } })).rejects.toBeInstanceOf(EventInputError)
    await expect(t.node.accept('not json', { format: 'json' })).rejects.toThrow(/malformed JSON at line 1 column 1/)
    expect(t.node.stats().counters.received).toBe(before)
    expect(t.node.queue.depth().unprocessed + t.node.queue.depth().inflight).toBe(0)
  })

  for (const mode of ['durable', 'memory'] as const) {
    it(`keeps a payload that can never parse as a dead letter with its raw text and meta (${mode})`, async () => {
      const t = await startTempNode(pipelines, { queue: `mode: ${mode}` })
      nodes.push(t)
      const event = {
        id: 'raw-1',
        origin: 'test-node',
        receivedAt: Date.now(),
        hops: 0,
        meta: { topic: 'sensors/x' },
        data: { raw: 'not json' },
      }
      await t.node.queue.putDeadletter(event, { pipeline: 'input:mqtt', error: 'malformed JSON', attempts: 1 })
      expect(t.node.queue.depth().deadletter).toBe(1)
      const [letter] = await t.node.queue.listDeadletter(10)
      expect(letter).toMatchObject({
        pipeline: 'input:mqtt',
        error: 'malformed JSON',
        event: { id: 'raw-1', meta: { topic: 'sensors/x' }, data: { raw: 'not json' } },
      })
    })
  }
})
