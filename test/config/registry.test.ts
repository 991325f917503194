import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { BingeError } from '../../src/errors.js'
import { durationSchema } from '../../src/util/duration.js'
import { entryOf, formatProblems, parseConfig, stepSchemas, type ConfigProblem } from '../../src/config/index.js'

const steps = (...lines: string[]) => ['pipelines:', '  p:', '    steps:', ...lines.map((l) => `      - ${l}`)].join('\n')

function problemsIn(text: string): ConfigProblem[] {
  try {
    parseConfig(text, 'a.yaml', {})
  } catch (err) {
    return (err as BingeError).details?.problems as ConfigProblem[]
  }
  throw new Error('expected the config to be refused')
}

// The step kinds registered today, as the messages list them.
const known = Object.keys(stepSchemas).sort().join(', ')

describe('the step registry', () => {
  afterEach(() => {
    delete stepSchemas.tally
  })

  it('names an unknown step and the known ones', () => {
    const problems = problemsIn(steps("filter: 'a > 1'", "fitler: 'a > 2'"))
    expect(formatProblems('a.yaml', problems)).toBe(`a.yaml:5:9 pipelines.p.steps[1]: unknown step "fitler"; known: ${known}`)
    expect(known.split(', ')).toEqual(expect.arrayContaining(['filter', 'map']))
  })

  it('accepts a step kind registered after the schema was built', () => {
    stepSchemas.tally = z.strictObject({ key: z.string(), window: durationSchema.default(600_000) })
    const config = parseConfig(steps('tally: { key: id }', "map: '$'"), 'a.yaml', {})
    expect(config.pipelines.p?.steps).toEqual([{ tally: { key: 'id', window: 600_000 } }, { map: '$' }])
    expect(entryOf(config.pipelines.p!.steps[0]!)).toEqual(['tally', { key: 'id', window: 600_000 }])
  })

  it("places a registered step's own problems under its name", () => {
    stepSchemas.tally = z.strictObject({ key: z.string(), window: durationSchema.default(600_000) })
    expect(problemsIn(steps('tally: { key: id, window: often, by: x }')).map((p) => [p.path, p.column])).toEqual([
      ['pipelines.p.steps[0].tally.window', 35],
      ['pipelines.p.steps[0].tally.by', 42],
    ])
  })

  it('refuses a step with two keys or none', () => {
    expect(problemsIn(steps("{ filter: 'a', map: 'b' }", '{}')).map((p) => p.message)).toEqual([
      'a step has exactly one key naming it, got "filter", "map"',
      `expected a step (known: ${known}), got an empty mapping`,
    ])
  })

  it('does not look names up on the prototype', () => {
    expect(problemsIn(steps('toString: x'))[0]?.message).toBe(`unknown step "toString"; known: ${known}`)
  })
})
