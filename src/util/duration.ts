// Durations as people write them in config: `200ms`, `5s`, `1m30s`, `1.5h`, or a
// plain number of milliseconds. The result is always whole milliseconds, so float
// noise (1.1s = 1100.0000000000002) never reaches a timer.

import { z } from 'zod'

const unitMs: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

// One `<number><unit>` part; a duration is one or more of them back to back (`1h30m`).
const part = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y
const plainNumber = /^(\d+(?:\.\d+)?|\.\d+)$/

const expected = 'expected a duration like 200ms, 5s or 10m'

/** Milliseconds in `input`; throws an Error saying what was expected otherwise. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new Error(`${expected}, got ${input}`)
    return Math.round(input)
  }
  const text = input.trim()
  if (plainNumber.test(text)) return Math.round(Number(text))
  if (text.length === 0) throw new Error(`${expected}, got ${JSON.stringify(input)}`)
  let total = 0
  part.lastIndex = 0
  while (part.lastIndex < text.length) {
    // Sticky: each part must start where the previous one ended, so junk anywhere fails.
    const m = part.exec(text)
    if (!m) throw new Error(`${expected}, got ${JSON.stringify(input)}`)
    total += Number(m[1]) * unitMs[m[2]!]!
  }
  return Math.round(total)
}

/** A config field holding a duration; its output is milliseconds. */
export const durationSchema = z
  .union([z.number(), z.string()], {
    error: (issue) => `${expected}, got ${describeValue(issue.input)}`,
  })
  .transform((value, ctx) => {
    try {
      return parseDuration(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, input: value })
      return z.NEVER
    }
  })

/** How a wrong value is quoted back in a message: strings quoted, others by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null) return 'nothing (null)'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return String(value)
}
