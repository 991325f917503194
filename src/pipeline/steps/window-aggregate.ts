// What a window holds and gives out: a running count, and per measured expression its
// sum, min, max and the sum behind its average. Plain JSON, so it is stored as is.
import type { z } from 'zod'
import { BingeError } from '../../errors.js'
import { bool, expression, list, section, strict } from '../../schema/fields.js'
import { compile, type Expression } from '../expression.js'
import type { JsonObject } from '../../queue/types.js'
import type { PipelineEvent } from '../types.js'

export const aggregateSchema = section(
  strict({
    count: bool().default(true).describe('the number of events'),
    sum: list(expression()).describe('JSONata values to sum, each written under its expression'),
    min: list(expression()).describe('JSONata values to take the lowest of'),
    max: list(expression()).describe('JSONata values to take the highest of'),
    avg: list(expression()).describe('JSONata values to average'),
  }),
)
export type AggregateConfig = z.output<typeof aggregateSchema>

type Numbers = Record<string, number>

export interface Accumulator {
  start: number
  end: number
  count: number
  sum: Numbers
  min: Numbers
  max: Numbers
  /** Sums behind `avg`: every event has every measured value, so avg = sum / count. */
  avg: Numbers
}

export class Aggregates {
  private readonly measured: Array<[string, Expression]>

  constructor(private readonly config: AggregateConfig) {
    const names = new Set([...config.sum, ...config.min, ...config.max, ...config.avg])
    this.measured = [...names].map((source) => [source, compile(source)])
  }

  /** The event's value of every measured expression; a value that is not a number fails the event. */
  async measure(event: PipelineEvent): Promise<Numbers> {
    const values: Numbers = {}
    for (const [name, expr] of this.measured) {
      const value = await expr.evaluate(event.data)
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        const got = value === undefined ? 'nothing' : JSON.stringify(value)
        throw new BingeError('BINGE_EXPRESSION_FAILED', `window: ${JSON.stringify(name)} gave ${got}, not a number`)
      }
      values[name] = value
    }
    return values
  }

  empty(start: number, end: number): Accumulator {
    return { start, end, count: 0, sum: {}, min: {}, max: {}, avg: {} }
  }

  /** A new accumulator with one more event (the old one is left as it was). */
  add(acc: Accumulator, values: Numbers): Accumulator {
    const next: Accumulator = {
      ...acc,
      count: acc.count + 1,
      sum: { ...acc.sum },
      min: { ...acc.min },
      max: { ...acc.max },
      avg: { ...acc.avg },
    }
    for (const f of this.config.sum) next.sum[f] = (next.sum[f] ?? 0) + values[f]!
    for (const f of this.config.avg) next.avg[f] = (next.avg[f] ?? 0) + values[f]!
    for (const f of this.config.min) next.min[f] = Math.min(next.min[f] ?? Infinity, values[f]!)
    for (const f of this.config.max) next.max[f] = Math.max(next.max[f] ?? -Infinity, values[f]!)
    return next
  }

  /** The result written out: only what the config asked for. */
  result(acc: Accumulator): JsonObject {
    const out: JsonObject = {}
    if (this.config.count) out.count = acc.count
    if (this.config.sum.length > 0) out.sum = acc.sum
    if (this.config.min.length > 0) out.min = acc.min
    if (this.config.max.length > 0) out.max = acc.max
    if (this.config.avg.length > 0) out.avg = Object.fromEntries(Object.entries(acc.avg).map(([f, s]) => [f, s / acc.count]))
    return out
  }
}
