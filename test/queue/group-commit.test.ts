// The group-commit writer on its own: who shares a write, when each caller settles,
// how one caller's refusal and a failed write are told apart.

import { describe, expect, it } from 'vitest'
import { GroupCommit, type Outcome } from '../../src/queue/group-commit.js'

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

describe('GroupCommit', () => {
  it('writes a lone call at once and gathers the calls that arrive during a write', async () => {
    const groups: number[][] = []
    const gates: Array<ReturnType<typeof deferred>> = []
    const gc = new GroupCommit<number, number>(async (inputs) => {
      groups.push(inputs)
      const gate = deferred()
      gates.push(gate)
      await gate.promise
      return inputs.map((n) => ({ ok: true, value: n * 10 }))
    })
    const first = gc.submit(1)
    await Promise.resolve()
    await Promise.resolve()
    expect(groups).toEqual([[1]])
    const later = [gc.submit(2), gc.submit(3), gc.submit(4)]
    let settled = false
    void first.then(() => (settled = true))
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false) // nobody settles before its write has finished
    gates[0]!.resolve()
    expect(await first).toBe(10)
    await new Promise((r) => setImmediate(r))
    expect(groups).toEqual([[1], [2, 3, 4]])
    gates[1]!.resolve()
    expect(await Promise.all(later)).toEqual([20, 30, 40])
    expect(gc.stats()).toEqual({ groups: 2, inputs: 4 })
  })

  it('rejects only the caller its commit refused, and every caller of a failed write', async () => {
    let fail = false
    const gc = new GroupCommit<number, number>(async (inputs) => {
      if (fail) throw new Error('disk on fire')
      return inputs.map((n): Outcome<number> => (n < 0 ? { ok: false, error: new Error('refused') } : { ok: true, value: n }))
    })
    const results = await Promise.allSettled([gc.submit(1), gc.submit(-1), gc.submit(2)])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    fail = true
    const failed = await Promise.allSettled([gc.submit(3), gc.submit(4)])
    expect(failed.every((r) => r.status === 'rejected')).toBe(true)
    fail = false
    expect(await gc.submit(5)).toBe(5) // a failed write does not stop the writer
  })

  it('runs exclusive work between groups, in arrival order', async () => {
    const log: string[] = []
    const gc = new GroupCommit<string, string>(async (inputs) => {
      log.push(`write ${inputs.join(',')}`)
      await new Promise((r) => setImmediate(r))
      return inputs.map((value) => ({ ok: true, value }))
    })
    const all = [
      gc.submit('a'),
      gc.submit('b'),
      gc.exclusive(async () => {
        log.push('exclusive')
        await new Promise((r) => setImmediate(r))
        return 'x'
      }),
      gc.submit('c'),
    ]
    await Promise.all(all)
    await gc.drain()
    expect(log).toEqual(['write a,b', 'exclusive', 'write c'])
  })

  it('writes one input per group when asked to', async () => {
    const gc = new GroupCommit<number, number>(async (inputs) => inputs.map((value) => ({ ok: true, value })), 1)
    await Promise.all([gc.submit(1), gc.submit(2), gc.submit(3)])
    expect(gc.stats()).toEqual({ groups: 3, inputs: 3 })
  })
})
