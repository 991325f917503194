// Topics, subjects and stream keys that depend on the event, written as Vector writes
// its templates: `out/{{ meta.topic }}`, `rooms.{{ data.room }}`. Each `{{ ... }}` is a
// JSONata expression over the envelope (`id`, `pipeline`, `node`, `meta`, `data`; `$meta`
// too), compiled at start so a syntax error stops the config, not the first event. Not
// `${...}`: that is the config's environment substitution. A placeholder that yields
// nothing, or something other than a string or number, fails the event for good (it
// would fail again): its pipeline's onFail decides.
import { text } from '../../schema/fields.js'
import { bindingsOf, compile, type Expression } from '../expression.js'
import type { Envelope } from '../types.js'
import { OutputFailure } from './failure.js'

const placeholder = /\{\{(.*?)\}\}/g

export interface Template {
  readonly source: string
  /** A template without placeholders: the same for every event. */
  readonly constant?: string
  render(envelope: Envelope): Promise<string>
}

export function compileTemplate(source: string): Template {
  const parts: Array<string | Expression> = []
  let last = 0
  for (const m of source.matchAll(placeholder)) {
    if (m.index > last) parts.push(source.slice(last, m.index))
    parts.push(compile(m[1]!.trim()))
    last = m.index + m[0].length
  }
  if (last < source.length) parts.push(source.slice(last))
  if (parts.every((p) => typeof p === 'string')) {
    return { source, constant: source, render: async () => source }
  }
  return {
    source,
    async render(envelope) {
      let out = ''
      for (const part of parts) {
        if (typeof part === 'string') {
          out += part
          continue
        }
        let value: unknown
        try {
          value = await part.evaluate(envelope, bindingsOf(envelope))
        } catch (err) {
          throw new OutputFailure(`{{ ${part.source} }} in "${source}" failed: ${(err as Error).message}`, true, err)
        }
        if (typeof value !== 'string' && typeof value !== 'number')
          throw new OutputFailure(
            `{{ ${part.source} }} in "${source}" gave ${value === undefined ? 'nothing' : typeof value} for event ${envelope.id}`,
            true,
          )
        out += String(value)
      }
      return out
    },
  }
}

/** A template field: checked (every placeholder compiles) when the config is read. */
export function templateField(what: string) {
  return text()
    .min(1, `expected ${what}`)
    .check((ctx) => {
      try {
        compileTemplate(ctx.value)
      } catch (err) {
        ctx.issues.push({ code: 'custom', message: `bad {{ }} placeholder: ${(err as Error).message}`, input: ctx.value })
      }
    })
}
