// Sizes as people write them in config: `512`, `100b`, `64KiB`, `1.5MiB`, `10MB`.
// KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB powers of 1000 (as in the SI and
// IEC); units are case-insensitive. The result is always a whole number of bytes.
// A share of a volume may be written as a percentage instead (`5%`), where a size can be.

import { z } from 'zod'
import { describeValue } from './duration.js'

const unitBytes: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
}

const sized = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i

const expected = 'expected a size like 512, 64KiB, 10MB or 1GiB'

/** Bytes in `input`; throws an Error saying what was expected otherwise. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    // A bare number is a byte count, and bytes do not come in halves.
    if (!Number.isSafeInteger(input) || input < 0) throw new Error(`${expected}, got ${input}`)
    return input
  }
  const m = sized.exec(input.trim())
  const unit = m ? unitBytes[(m[2] || 'b').toLowerCase()] : undefined
  if (!m || unit === undefined) throw new Error(`${expected}, got ${JSON.stringify(input)}`)
  const bytes = Math.round(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes)) throw new Error(`size ${JSON.stringify(input)} is too large`)
  return bytes
}

/** A config field holding a size; its output is bytes. */
export const sizeSchema = z
  .union([z.number(), z.string()], {
    error: (issue) => `${expected}, got ${describeValue(issue.input)}`,
  })
  .transform((value, ctx) => {
    try {
      return parseSize(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, input: value })
      return z.NEVER
    }
  })

/** A size, or a percentage of something only known at run time (a volume). */
export type SizeOrShare = { bytes: number } | { percent: number }

const share = /^(\d+(?:\.\d+)?|\.\d+)\s*%$/
const expectedShare = 'expected a size or percentage like 256MiB or 5% (of the volume)'

/** `256MiB` -> { bytes }, `5%` -> { percent } (over 0, under 100); throws saying what was expected. */
export function parseSizeOrShare(input: string | number): SizeOrShare {
  const m = typeof input === 'string' ? share.exec(input.trim()) : null
  if (m) {
    const percent = Number(m[1])
    if (!(percent > 0 && percent < 100)) throw new Error(`a percentage must be over 0% and under 100%, got ${JSON.stringify(input)}`)
    return { percent }
  }
  try {
    return { bytes: parseSize(input) }
  } catch {
    throw new Error(`${expectedShare}, got ${typeof input === 'string' ? JSON.stringify(input) : input}`)
  }
}

/** A config field holding a size or a percentage. */
export const sizeOrShareSchema = z
  .union([z.number(), z.string()], {
    error: (issue) => `${expectedShare}, got ${describeValue(issue.input)}`,
  })
  .transform((value, ctx) => {
    try {
      return parseSizeOrShare(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, input: value })
      return z.NEVER
    }
  })
