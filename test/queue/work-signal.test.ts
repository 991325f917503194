// The workers' wake-up: no waiter is ever left asleep while work was announced, and the
// notices of one event-loop turn wake each waiter once, at the end of that turn.
import { describe, expect, it } from 'vitest'
import { WorkSignal } from '../../src/queue/work-signal.js'

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('WorkSignal', () => {
  it('wakes every waiter once for all the notices of a turn, after the turn', async () => {
    const signal = new WorkSignal()
    let work = false
    const woken: string[] = []
    const a = signal.wait(() => work).then(() => woken.push('a'))
    const b = signal.wait(() => work).then(() => woken.push('b'))
    work = true
    for (let i = 0; i < 10; i++) signal.notify()
    await Promise.resolve()
    expect(woken).toEqual([]) // not during the turn that announced the work
    await Promise.all([a, b])
    expect(woken.sort()).toEqual(['a', 'b'])
  })

  it('wakes a waiter that started waiting between the notice and the wake', async () => {
    const signal = new WorkSignal()
    const first = signal.wait(() => false)
    signal.notify()
    // Its ready() said no (the work was taken meanwhile, say): the scheduled wake still reaches it.
    const late = signal.wait(() => false)
    await Promise.all([first, late])
  })

  it('lets a waiter that finds work ready go at once, and a later notice wake the next waiter', async () => {
    const signal = new WorkSignal()
    await signal.wait(() => true)
    signal.notify() // nobody waiting: nothing scheduled
    await turn()
    let done = false
    const next = signal.wait(() => false).then(() => (done = true))
    await turn()
    expect(done).toBe(false)
    signal.notify()
    await next
  })

  it('ends a wait when its abort signal fires', async () => {
    const signal = new WorkSignal()
    const controller = new AbortController()
    const waiting = signal.wait(() => false, controller.signal)
    controller.abort()
    await waiting
  })
})
