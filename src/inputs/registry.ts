// The registry of input kinds (as for steps and outputs in pipeline/registry.ts): config
// validation (config/schema.ts), the reference docs and the node all read these entries.
// HTTP is not here: it is built in, under `http:`.
import { BingeError } from '../errors.js'
import { entryOf } from '../schema/one-key.js'
import { inputEntries } from './index.js'
import type { Input, InputContext, InputEntry } from './types.js'

export { inputEntries }

const byName = new Map<string, InputEntry>()
for (const entry of inputEntries) {
  if (byName.has(entry.name)) throw new BingeError('BINGE_INTERNAL', `two input kinds are named "${entry.name}"`)
  byName.set(entry.name, entry)
}

/** Names for each configured input: its kind, then `kind#2`, `kind#3` for later ones of the same kind. */
export function inputNames(items: readonly object[]): string[] {
  const seen = new Map<string, number>()
  return items.map((item) => {
    const [kind] = entryOf(item as Record<string, unknown>)
    const n = (seen.get(kind) ?? 0) + 1
    seen.set(kind, n)
    return n === 1 ? kind : `${kind}#${n}`
  })
}

/** Build one input from its config entry (`{ mqtt: { url, topics } }`), defaults applied by validation. */
export function buildInput(item: object, context: InputContext): Input {
  const [kind, config] = entryOf(item as Record<string, unknown>)
  const entry = byName.get(kind)
  if (!entry) throw new BingeError('BINGE_CONFIG_INVALID', `unknown input "${kind}"`)
  return entry.create(config ?? {}, context)
}
