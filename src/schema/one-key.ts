// Steps, outputs and onFail actions are written as one-key objects whose key names
// the kind (`- filter: 'x > 1'`). The key is looked up in a registry at parse time,
// not when this module loads, so kinds registered later are accepted too.

import { z } from 'zod'
import { describeValue } from '../util/duration.js'

/** A parsed one-key object: `{ [kind]: config }`, the config with its defaults applied. */
export type OneKey = Readonly<Record<string, unknown>>

/** The kind named by a parsed one-key object and its config. */
export function entryOf(item: OneKey): [string, unknown] {
  const entries = Object.entries(item)
  if (entries.length !== 1) throw new Error(`expected one key, got ${entries.length}`)
  return entries[0]!
}

/** A schema for `{ <name>: <config> }` where `<name>` is a key of `registry`. */
export function oneKeyOf(kind: string, registry: Readonly<Record<string, z.ZodType>>) {
  return z.unknown().transform((input, ctx): OneKey => {
    const known = () => Object.keys(registry).sort().join(', ')
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a ${kind} written as "name: config" (known: ${known()}), got ${describeValue(input)}`,
      })
      return z.NEVER
    }
    const keys = Object.keys(input)
    if (keys.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          keys.length === 0
            ? `expected a ${kind} (known: ${known()}), got an empty mapping`
            : `a ${kind} has exactly one key naming it, got ${keys.map((k) => `"${k}"`).join(', ')}`,
      })
      return z.NEVER
    }
    const name = keys[0]!
    const schema = Object.hasOwn(registry, name) ? registry[name] : undefined
    if (!schema) {
      ctx.addIssue({ code: 'custom', message: `unknown ${kind} "${name}"; known: ${known()}` })
      return z.NEVER
    }
    const parsed = schema.safeParse((input as Record<string, unknown>)[name])
    if (!parsed.success) {
      // Keep each issue whole (unknown keys stay splittable), placed under the name.
      for (const issue of parsed.error.issues) {
        ctx.issues.push({ ...issue, path: [name, ...issue.path], input: undefined })
      }
      return z.NEVER
    }
    return { [name]: parsed.data }
  })
}
