// The stateful steps' config: defaults as parsed, and every problem at its place.
import { describe, expect, it } from 'vitest'
import { parseConfig, type ConfigProblem } from '../../src/config/index.js'
import type { BingeError } from '../../src/errors.js'

const steps = (...lines: string[]) => ['pipelines:', '  p:', '    steps:', ...lines.map((l) => `      - ${l}`)].join('\n')

function problemsIn(text: string): Array<[string, string]> {
  try {
    parseConfig(text, 'a.yaml', {})
  } catch (err) {
    return ((err as BingeError).details!.problems as ConfigProblem[]).map((p) => [p.path, p.message])
  }
  throw new Error('expected the config to be refused')
}

describe('stateful step config', () => {
  it('fills in defaults', () => {
    const config = parseConfig(
      steps('dedupe: { key: id }', 'throttle: { rate: 5/1m }', 'window: { size: 1m, every: 10s }', 'sample: { rate: "0.25" }'),
      'a.yaml',
      {},
    )
    expect(config.pipelines.p!.steps).toEqual([
      { dedupe: { key: 'id', window: 600_000 } },
      { throttle: { rate: { count: 5, perMs: 60_000, text: '5/1m' }, mode: 'drop' } },
      { window: { size: 60_000, every: 10_000, lateness: 0, idle: 1000, aggregate: { count: true, sum: [], min: [], max: [], avg: [] } } },
      { sample: { rate: 0.25 } },
    ])
  })

  it('names every problem with its place', () => {
    expect(
      problemsIn(
        steps(
          'dedupe: { window: 0s }',
          'throttle: { rate: fast, mode: delay, time: t }',
          'throttle: { rate: 10/s, mode: slow }',
          'window: { size: 1s, every: 2s, aggregate: { sum: [v], median: [v] } }',
          'window: { size: 1h, every: 1s }',
          'sample: { rate: 2 }',
          "window: { size: 1s, key: 'a +' }",
        ),
      ),
    ).toEqual([
      ['pipelines.p.steps[0].dedupe.key', 'required: expected a JSONata expression'],
      ['pipelines.p.steps[0].dedupe.window', 'expected a duration above 0'],
      ['pipelines.p.steps[1].throttle.rate', 'expected a rate like 100/s, 5/1m or 20/200ms, got "fast"'],
      ['pipelines.p.steps[2].throttle.mode', 'expected one of drop, delay, got "slow"'],
      ['pipelines.p.steps[3].window.every', 'must be at or under size (1000ms), got 2000ms'],
      ['pipelines.p.steps[3].window.aggregate.median', 'unknown key "median"; known: count, sum, min, max, avg'],
      ['pipelines.p.steps[4].window.every', 'size / every must be at most 1000 windows per event, got 3600'],
      ['pipelines.p.steps[5].sample.rate', 'expected a number from 0 to 1'],
      ['pipelines.p.steps[6].window.key', expect.stringContaining('expected a JSONata expression')],
    ])
  })

  it('refuses a time field in delay mode and windows that skip time', () => {
    expect(problemsIn(steps('throttle: { rate: 10/s, mode: delay, time: t }', 'window: { size: 1s, every: 2s }'))).toEqual([
      ['pipelines.p.steps[0].throttle.time', 'delay mode waits on the wall clock; time applies to drop mode only'],
      ['pipelines.p.steps[1].window.every', 'must be at or under size (1000ms), got 2000ms'],
    ])
  })
})
