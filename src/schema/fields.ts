// Small schema builders shared by the config sections, so every field of one kind
// validates and words its errors the same way. Numbers and booleans also accept
// their string form, because `${VAR}` substitution always yields a string.

import jsonata from 'jsonata'
import { z } from 'zod'
import { describeValue } from '../util/duration.js'
import { splitHostPort } from '../util/host-port.js'

/** An object that refuses unknown keys and names the known ones (see problems.ts). */
export function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape).join(', ')
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return `known: ${known}`
      if (issue.code === 'invalid_type') return expected(`a mapping (${known})`, issue.input)
      return undefined
    },
  })
}

/** A section that may be absent or written empty (`http:`); both mean "all defaults". */
export function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => v ?? {}, schema)
}

/** Like `section`, but absent stays absent: only an explicit empty value means defaults. */
export function optionalSection<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? {} : v), schema).optional()
}

/**
 * A check that field `low` is at or under field `high`, reported at `reportAt`. It
 * runs even when other fields of the object failed, so all problems show at once.
 */
export function ordered(low: string, high: string, reportAt: 'low' | 'high', unit = '') {
  return z.superRefine(
    (value: Record<string, unknown>, ctx) => {
      const a = value[low]
      const b = value[high]
      if (typeof a !== 'number' || typeof b !== 'number' || a <= b) return
      ctx.addIssue(
        reportAt === 'low'
          ? { code: 'custom', path: [low], message: `must be at or under ${high} (${b}${unit}), got ${a}${unit}` }
          : { code: 'custom', path: [high], message: `must be at or above ${low} (${a}${unit}), got ${b}${unit}` },
      )
    },
    { when: () => true },
  )
}

/** A list that may be absent or written empty (`steps:`); both mean none. */
export function list<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => v ?? [], z.array(item))
}

/** `expected <what>, got <value>`, or `required` when the key is missing. */
export function expected(what: string, input: unknown): string {
  return input === undefined ? `required: expected ${what}` : `expected ${what}, got ${describeValue(input)}`
}

const intText = /^\s*[+-]?\d+\s*$/

/** A whole number in [min, max]. */
export function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`
  const message = (v: unknown) => expected(`a whole number ${range}`, v)
  return z.preprocess(
    (v) => (typeof v === 'string' && intText.test(v) ? Number(v) : v),
    z.int({ error: (i) => message(i.input) }).check((ctx) => {
      if (ctx.value < min || ctx.value > max) {
        ctx.issues.push({ code: 'custom', message: message(ctx.value), input: ctx.value })
      }
    }),
  )
}

export function bool() {
  return z.preprocess(
    (v) => (v === 'true' ? true : v === 'false' ? false : v),
    z.boolean({ error: (i) => expected('true or false', i.input) }),
  )
}

/** One of a fixed set of words. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (i) => expected(`one of ${values.join(', ')}`, i.input),
  })
}

export function text() {
  return z.string({ error: (i) => expected('a string', i.input) })
}

/** An http(s) URL; other schemes are refused because every consumer POSTs to it. */
export function httpUrl() {
  return z.url({
    protocol: /^https?$/,
    error: (i) => expected('an http(s) URL', i.input),
  })
}

export function listenAddress() {
  return text().check((ctx) => {
    if (!splitHostPort(ctx.value)?.host) {
      ctx.issues.push({
        code: 'custom',
        message: `expected host:port with a port from 0 to 65535, got ${describeValue(ctx.value)}`,
        input: ctx.value,
      })
    }
  })
}

/**
 * A JSONata expression, compiled here so a syntax error is reported at its place in
 * the file rather than when the first event reaches it. The value stays a string.
 */
export function expression() {
  return z.string({ error: (i) => expected('a JSONata expression', i.input) }).check((ctx) => {
    const problem = compileProblem(ctx.value)
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value })
  })
}

function compileProblem(source: string): string | undefined {
  if (source.trim() === '') return 'expected a JSONata expression, got an empty string'
  try {
    jsonata(source)
    return undefined
  } catch (err) {
    // jsonata throws plain objects carrying `message` and a character `position`.
    const e = err as { message?: string; position?: number }
    const at = typeof e.position === 'number' ? ` (at character ${e.position})` : ''
    return `expected a JSONata expression: ${e.message ?? String(err)}${at}`
  }
}
