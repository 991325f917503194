// The trace store behind GET /events/ID on its own: bounded by ids (oldest forgotten
// first) and by steps per id, with each step's node and time as the API shows them.
import { describe, expect, it } from 'vitest'
import { TraceStore } from '../../src/trace.js'

describe('TraceStore', () => {
  it('keeps the newest ids up to its capacity, forgetting the oldest first', () => {
    const traces = new TraceStore('n1', 3)
    for (const id of ['a', 'b', 'c']) traces.add(id, 'received')
    traces.add('a', 'acked') // a later step of a known id takes no new slot
    traces.add('d', 'received')
    expect(traces.get('a')).toBeUndefined()
    expect(traces.get('b')?.map((s) => s.state)).toEqual(['received'])
    traces.add('e', 'received')
    traces.add('f', 'received')
    expect(['b', 'c', 'd', 'e', 'f'].map((id) => traces.get(id) !== undefined)).toEqual([false, false, true, true, true])
  })

  it('shows each step with its node, an ISO time and the extra fields given', () => {
    const traces = new TraceStore('n1')
    const extra = { pipeline: 'p' }
    traces.add('x', 'processed', extra)
    traces.add('y', 'processed', extra)
    const [step] = traces.get('x')!
    expect(step).toMatchObject({ state: 'processed', node: 'n1', pipeline: 'p' })
    expect(new Date(step!.at).toISOString()).toBe(step!.at)
  })

  it('bounds the history of one id', () => {
    const traces = new TraceStore('n1')
    for (let i = 0; i < 100; i++) traces.add('poison', 'failed:retry')
    expect(traces.get('poison')).toHaveLength(64)
  })
})
