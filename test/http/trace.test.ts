// The trace store behind GET /events/ID on its own: bounded by ids (oldest forgotten
// first) and by steps per id, with each step's node and time as the API shows them.
import { describe, expect, it } from 'vitest'
import { TraceStore } from '../../src/trace.js'

describe('TraceStore', () => {
  it('keeps the usual four steps of the newest ids up to its capacity, forgetting the oldest steps first', () => {
    const traces = new TraceStore('n1', 2) // 8 steps
    for (const id of ['a', 'b']) for (const state of ['received', 'dequeued', 'processed', 'acked']) traces.add(id, state)
    expect(traces.get('a')?.map((s) => s.state)).toEqual(['received', 'dequeued', 'processed', 'acked'])
    traces.add('c', 'received')
    expect(traces.get('a')?.map((s) => s.state)).toEqual(['dequeued', 'processed', 'acked'])
    for (const state of ['dequeued', 'processed', 'acked']) traces.add('c', state)
    expect(traces.get('a')).toBeUndefined()
    expect(['b', 'c'].map((id) => traces.get(id)?.length)).toEqual([4, 4])
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

  it('bounds the history of one id it shows', () => {
    const traces = new TraceStore('n1')
    for (let i = 0; i < 100; i++) traces.add('poison', 'failed:retry')
    expect(traces.get('poison')).toHaveLength(64)
  })
})
