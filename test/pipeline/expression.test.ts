// JSONata limits that an event cannot get around: jsonata checks its 1 s time box only
// between steps, so one `$pad` with a width taken from the event could run for seconds
// and take gigabytes. The width is bounded; within the bound `$pad` is jsonata's own.
import { describe, expect, it } from 'vitest'
import { compile, maxPadWidth } from '../../src/pipeline/expression.js'

describe('expression limits', () => {
  const pad = compile('$pad(s, n, c)')

  it('keeps $pad as jsonata has it: right, left, default and multi-character padding, undefined in, undefined out', async () => {
    expect(await pad.evaluate({ s: 'x', n: 5, c: 'ab' })).toBe('xabab')
    expect(await pad.evaluate({ s: 'x', n: -4, c: '0' })).toBe('000x')
    expect(await compile('$pad(s, 3)').evaluate({ s: 'x' })).toBe('x  ')
    expect(await pad.evaluate({ n: 3 })).toBeUndefined()
    expect(await pad.evaluate({ s: 'x', n: maxPadWidth, c: '-' })).toHaveLength(maxPadWidth)
  })

  it('fails the event (to its onFail) for a width from the event over the bound, in either direction, before building it', async () => {
    for (const n of [maxPadWidth + 1, -400_000_000]) {
      await expect(pad.evaluate({ s: 'x', n, c: 'abcdefgh' })).rejects.toMatchObject({
        code: 'BINGE_EXPRESSION_FAILED',
        message: expect.stringContaining(`$pad width ${n} is over the limit of ${maxPadWidth} characters`),
      })
    }
    // A long pad string multiplies what jsonata builds before it cuts the padding to width.
    await expect(pad.evaluate({ s: 'x', n: 100_000, c: 'y'.repeat(100) })).rejects.toMatchObject({
      code: 'BINGE_EXPRESSION_FAILED',
      message: expect.stringContaining('$pad width 100000 with a 100-character pad string would build 10000000 characters'),
    })
  })
})
