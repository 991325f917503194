// A rate as people write it: `100/s`, `5/1m`, `20/200ms`, or a plain number per second.
import { z } from 'zod'
import { describeValue, parseDuration } from '../../util/duration.js'

export interface Rate {
  count: number
  perMs: number
  /** As written, for messages. */
  text: string
}

const shape = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\S+)\s*$/
const expected = 'expected a rate like 100/s, 5/1m or 20/200ms'

export function parseRate(input: string | number): Rate {
  if (typeof input === 'number') {
    if (!(input > 0) || !Number.isFinite(input)) throw new Error(`${expected}, got ${input}`)
    return { count: input, perMs: 1000, text: `${input}/s` }
  }
  const m = shape.exec(input)
  if (!m) throw new Error(`${expected}, got ${JSON.stringify(input)}`)
  const count = Number(m[1])
  // `100/s` means per one second: a bare unit is a duration of one.
  const unit = /^[a-z]+$/.test(m[2]!) ? `1${m[2]}` : m[2]!
  let perMs: number
  try {
    perMs = parseDuration(unit)
  } catch {
    throw new Error(`${expected}, got ${JSON.stringify(input)}`)
  }
  if (!(count > 0) || !(perMs > 0)) throw new Error(`${expected} (both above 0), got ${JSON.stringify(input)}`)
  return { count, perMs, text: input.trim() }
}

export const rateSchema = z
  .union([z.number(), z.string()], { error: (issue) => `${expected}, got ${describeValue(issue.input)}` })
  .transform((value, ctx): Rate => {
    try {
      return parseRate(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, input: value })
      return z.NEVER
    }
  })
